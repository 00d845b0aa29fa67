"""Is the remaining landmark error the model's or the annotations'?

Trains K models that differ only in their seed (initialisation, validation images, augmentation draws) on the
same training split as bench/landmarks.py, each within the same CPU budget, and scores each one, and their
average, on the held-out images. Per landmark it reports each model's mean error, the error of the averaged
points, and the models' spread (mean distance of a model's point from the models' average).

Reading it: if the error were the models' own scatter (too little data or training, unlucky optimisation),
independent models would scatter around the annotations, their spread would be about as large as their error,
and averaging them would remove much of it. If the models agree with each other (small spread) and all sit
equally far from the annotations, averaging removes nothing: that part of the error is where the held-out
annotations differ from what the training annotations teach, i.e. annotation scatter a model trained on these
labels cannot remove.

    python bench/landmark_consensus.py --dataset mollusc-shells --seeds 0 1 2 --minutes 20

Seed 0 is bench/landmarks.py's refined model of the same budget when that run exists (it is the same training).

Writes bench/results/landmark_consensus-<dataset>.json and prints tables.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, WORK, print_table, save_results  # noqa: E402
from landmarks import trained_within, train_on_budget  # noqa: E402

from shapekit.config import RunConfig, parse_overrides  # noqa: E402
from shapekit.engine import Runtime, load_model  # noqa: E402
from shapekit.io import load_landmark_set, read_image  # noqa: E402
from shapekit.io.landmark_dataset import split_dataset  # noqa: E402


def consensus(predictions: np.ndarray, true: np.ndarray, long_sides: np.ndarray) -> dict:
    """predictions (K, M, N, 2) of K models on M images, true (M, N, 2), long sides (M,) -> summary."""
    average = predictions.mean(0)
    model_errors = np.linalg.norm(predictions - true[None], axis=-1)  # (K, M, N)
    average_errors = np.linalg.norm(average - true, axis=-1)  # (M, N)
    spread = np.linalg.norm(predictions - average[None], axis=-1)  # (K, M, N)
    pct = long_sides[None, :, None]
    return {
        "models_mean_pct": [float(v) for v in (model_errors / pct * 100).mean((1, 2))],
        "average_mean_pct": float((average_errors / long_sides[:, None] * 100).mean()),
        "models_mean_px": [float(v) for v in model_errors.mean((1, 2))],
        "average_mean_px": float(average_errors.mean()),
        "spread_mean_px": float(spread.mean()),
        "per_landmark": [{"landmark": n + 1, "model_error_px": float(model_errors[:, :, n].mean()),
                          "average_error_px": float(average_errors[:, n].mean()),
                          "spread_px": float(spread[:, :, n].mean())} for n in range(true.shape[1])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mollusc-shells")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--minutes", type=float, default=20.0, help="CPU training budget per model")
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--opt", action="append", default=[], help="task option key=value (every model)")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")

    # The split of bench/landmarks.py (its seed 0), so the figures sit beside its table.
    train_dir, test_dir = split_dataset(DATA / args.dataset, WORK / "landmarks" / args.dataset / "split", 0.2, 0)
    records = load_landmark_set(test_dir).records
    images = [read_image(r.image_path) for r in records]
    true = np.stack([r.points for r in records])
    long_sides = np.array([r.long_side for r in records], float)
    runtime = Runtime.create()
    predictions = []
    for seed in args.seeds:
        run_dir = WORK / "landmarks" / args.dataset / f"consensus_{args.input_size}_seed{seed}"
        bench_run = WORK / "landmarks" / args.dataset / f"run_{args.input_size}_refined"
        if seed == 0 and not args.opt and trained_within(bench_run, args.minutes):
            # bench/landmarks.py's default refined model is this same run (split, settings, seed 0): reused when it
            # was trained on the same budget (and left alone otherwise: a retrain would replace it).
            run_dir = bench_run
        config = RunConfig(task="landmarks", data=train_dir, out=run_dir, input_size=args.input_size, seed=seed,
                           batch_size=8, val_fraction=0.1, plot_every=10,
                           options=parse_overrides(["refine=true", *args.opt]))
        train_on_budget(config, args.minutes, retrain=args.retrain, label=f"{args.dataset} seed {seed}")
        task, model = load_model(run_dir / "best.ckpt")
        predictions.append(task.infer_images(model, images, runtime)[0])
    summary = consensus(np.stack(predictions), true, long_sides)

    print_table(f"{args.dataset}: {len(args.seeds)} models (seeds {args.seeds}), {len(images)} held-out images",
                ["", "mean error, % of long side", "mean error, px"],
                [*[[f"model, seed {s}", p, px] for s, p, px in zip(args.seeds, summary["models_mean_pct"],
                                                                   summary["models_mean_px"])],
                 ["average of the models' points", summary["average_mean_pct"], summary["average_mean_px"]]])
    print_table("Per landmark: error against the annotations, and the models' spread around their average (px)",
                ["landmark", "model error (mean of models)", "error of the average", "models' spread"],
                [[r["landmark"], r["model_error_px"], r["average_error_px"], r["spread_px"]]
                 for r in summary["per_landmark"]])
    save_results(f"landmark_consensus-{args.dataset}",
                 {"settings": vars(args), "n_train": len(load_landmark_set(train_dir)), "n_test": len(images),
                  **summary})


if __name__ == "__main__":
    main()
