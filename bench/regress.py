"""Which method should a biologist pick? Five-round cross-validation on mollusc-shells and lizard-toepads of

  1. the beetle paper's regression CNN trained from scratch,
  2. the same CNN fine-tuned from a model first trained on the other dataset (the paper's second
     scenario: convolution and fully connected layers kept, output layer fresh),
  3. the heatmap U-Net (landmarks task),

every image predicted once by a model that never saw it; per-landmark errors side by side.

    python bench/regress.py [--rounds 5] [--lizard-images 300] [--minutes 1.5]

Each training gets the same CPU budget (--minutes; each run fits its epochs and learning-rate schedule to it from
its own epoch times, as `shapekit train --minutes` does). lizard-toepads is
subsampled (--lizard-images, fixed seed) so that the 32 trainings fit in about an hour on 2 cores.
Writes bench/results/regress.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, WORK, console, print_table, save_results, trained_epochs  # noqa: E402

from shapekit.config import RunConfig  # noqa: E402
from shapekit.engine import train  # noqa: E402
from shapekit.io import load_landmark_set  # noqa: E402
from shapekit.io.landmark_dataset import find_annotation_file, write_subsets  # noqa: E402
from shapekit.shape_analysis import analyse  # noqa: E402
from shapekit.tasks._keypoints import cross_validate  # noqa: E402

def prepare(name: str, limit: int | None, seed: int) -> Path:
    source = DATA / name
    count = len(load_landmark_set(source))
    if limit is None or limit >= count:
        return source
    chosen = sorted(random.Random(seed).sample(range(count), limit))
    return write_subsets(source, WORK / "regress" / "data" / name, {f"subset_{limit}": chosen})[f"subset_{limit}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=1.5, help="CPU budget per training")
    parser.add_argument("--lizard-images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
    torch.manual_seed(args.seed)

    data = {"mollusc-shells": prepare("mollusc-shells", None, args.seed),
            "lizard-toepads": prepare("lizard-toepads", args.lizard_images, args.seed)}
    sizes = {name: len(load_landmark_set(path)) for name, path in data.items()}
    regress_opts = {"channels": "gray"}

    # The paper's second scenario: a model trained on the other part first.
    pretrained = {}
    for name, path in data.items():
        run = WORK / "regress" / "pretrain" / name
        if not (run / "best.ckpt").exists():
            config = RunConfig(task="regress", data=path, out=run, seed=args.seed, options=regress_opts, plot_every=50,
                               minutes=args.minutes * 2, max_minutes=args.minutes * 2.2)
            train(config, resume=(run / "last.ckpt").exists(), console=console)
        pretrained[name] = run / "best.ckpt"

    methods = {
        "regression CNN, from scratch": lambda other: RunConfig(task="regress", options=regress_opts),
        "regression CNN, fine-tuned from the other dataset": lambda other: RunConfig(
            task="regress", options=regress_opts, init_from=pretrained[other]),
        "heatmap U-Net (landmarks)": lambda other: RunConfig(task="landmarks", options={"refine": False}),  # as measured
    }
    results, rows = {}, []
    for name, path in data.items():
        other = next(k for k in data if k != name)
        results[name] = {"n_images": sizes[name], "methods": {}}
        for label, make in methods.items():
            config = make(other)
            config = config.model_copy(update={"seed": args.seed, "minutes": args.minutes,
                                               "max_minutes": args.minutes * 1.2, "plot_every": 50})
            out = WORK / "regress" / name / label.split(",")[0].replace(" ", "_") / (
                "finetuned" if config.init_from else "scratch")
            start = time.time()
            report = cross_validate(config, path, args.rounds, out, console=console)
            # Do predicted shapes tell the same biology? Manual vs out-of-fold predicted configurations.
            shape = analyse(find_annotation_file(path), out / "shape_analysis", Path(report["out_of_fold_tps"]))
            results[name]["methods"][label] = {
                "procrustes_distance_between_means": shape["procrustes_distance_between_means"],
                "paired_pc1_correlation": shape.get("paired_pc1_correlation"),
                "paired_centroid_size_correlation": shape.get("paired_centroid_size_correlation"),
                "epochs_per_round": [trained_epochs(out / f"round_{k + 1}" / "run") for k in range(args.rounds)],
                "minutes": (time.time() - start) / 60,
                "mean_px": report["mean_px"], "median_px": report["median_px"],
                "mean_pct_long_side": report["mean_pct_long_side"],
                "per_landmark_mean_px": [r["mean_px"] for r in report["per_landmark"]],
                "per_round_mean_px": [r["mean_px"] for r in report["rounds"]],
            }
        names = load_landmark_set(path).names
        labels = list(methods)
        rows = [[lm] + [results[name]["methods"][m]["per_landmark_mean_px"][k] for m in labels]
                for k, lm in enumerate(names)]
        rows.append(["mean px"] + [results[name]["methods"][m]["mean_px"] for m in labels])
        rows.append(["% long side"] + [results[name]["methods"][m]["mean_pct_long_side"] for m in labels])
        rows.append(["Procrustes d(means)"] + [results[name]["methods"][m]["procrustes_distance_between_means"]
                                               for m in labels])
        rows.append(["PC1 r (paired)"] + [results[name]["methods"][m]["paired_pc1_correlation"] for m in labels])
        print_table(f"{name}: {args.rounds}-round cross-validation, mean error per landmark (px), "
                    f"{sizes[name]} images", ["landmark"] + labels, rows)
    save_results("regress", {"settings": vars(args), "datasets": results})


if __name__ == "__main__":
    main()
