"""Heatmap landmark benchmark on the real morphometrics datasets, with dlib (ml-morph) as baseline.

For each dataset: a fixed-seed 80/20 split; shapekit's heatmap U-Net is trained on the 80 % within a
stated CPU budget per model (`shapekit train --minutes`: epochs fitted to it from the run's own first epochs),
dlib's ensemble-of-regression-trees shape predictor (the ml-morph method, whole image as the object box) on the
same images; both are scored on the unseen 20 % in original pixels.

    python bench/landmarks.py --minutes 20         # all three datasets, the default ~20-minute budget
    python bench/landmarks.py --datasets drosophila-wings --minutes 3 --variants refined

Rows: the coarse model (whole-image heatmaps only) and the refined model (crop refiner, trained jointly,
the same budget), each without and with test-time augmentation, the refined model's own coarse stage and
the same model with one more refiner pass (crops re-centred on the points of the pass before), the refined
model exported to ONNX (fp32 and int8) and run by onnxruntime, and dlib; mean / median / 95th-percentile error
in pixels and in % of the image's long side; and the mean % over the test images whose labels `shapekit check`
does not flag (the labels alone decide, before any model is trained).

    python bench/landmarks.py --datasets lizard-toepads --labels checked --results landmarks-lizard-checked

trains and tests on a copy whose landmark numbering `shapekit check` repaired (same split).

A run folder already trained on the same budget and settings is reused (--retrain trains it again).
Writes bench/results/<--results>.json and prints a table.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, WORK, console, print_table, save_results, trained_epochs  # noqa: E402

from shapekit.config import RunConfig, parse_overrides  # noqa: E402
from shapekit.engine import Runtime, load_model, train  # noqa: E402
from shapekit.io import load_landmark_set, read_image  # noqa: E402
from shapekit.io.landmark_dataset import split_dataset  # noqa: E402
from shapekit.metrics import landmark_errors, summarize_landmark_errors  # noqa: E402

DATASETS = ["mollusc-shells", "drosophila-wings", "lizard-toepads"]


VARIANTS = {"coarse": ["refine=false"], "refined": ["refine=true"]}


@dataclass
class TestLabels:
    """The test split's images with their long sides and whether `shapekit check` flags their labels
    (checked on the whole dataset, labels alone: no model's errors decide)."""
    names: list[str]
    long_sides: np.ndarray
    flagged: np.ndarray

    @classmethod
    def of(cls, data_dir: Path, test_dir: Path) -> "TestLabels":
        from shapekit.label_check import flagged_images

        flagged = flagged_images(data_dir)
        records = load_landmark_set(test_dir).records
        names = [r.image_path.name for r in records]
        return cls(names, np.array([r.long_side for r in records], float), np.array([n in flagged for n in names]))

    def unflagged(self, report: dict) -> dict:
        """Mean % of the long side over the test images the check does not flag."""
        per_image = dict(zip(report.get("images", self.names), report["per_image_mean_px"]))
        pct = np.array([per_image[n] for n in self.names]) / self.long_sides * 100
        return {"n_test_flagged": int(self.flagged.sum()),
                "mean_pct_long_side_unflagged": float(pct[~self.flagged].mean())}


def _row(method: str, report: dict, predict_ips: float, epochs, train_minutes, test: TestLabels | None) -> dict:
    return {"method": method, "epochs": epochs, "train_minutes": train_minutes,
            **(test.unflagged(report) if test is not None else {}),
            "mean_px": report["mean_px"], "median_px": report["median_px"], "p95_px": report["p95_px"],
            "mean_pct_long_side": report["mean_pct_long_side"],
            "median_pct_long_side": report["median_pct_long_side"], "p95_pct_long_side": report["p95_pct_long_side"],
            "predict_img_per_s": predict_ips,
            "per_landmark_mean_px": [r["mean_px"] for r in report["per_landmark"]],
            "pck_pct_long_side": report["pck_pct_long_side"]}


def _predict_speed(task, model, images, runtime, tta: bool, refine: bool, repeats: int = 3, forward=None) -> float:
    """Images per second at batch 8 (at least 32 images per pass, median of ``repeats`` passes: the machine is
    shared, and one slow pass should not decide the figure)."""
    batch = (images * (1 + 32 // max(1, len(images))))[:max(32, len(images))]
    task.infer_images(model, batch[:8], runtime, tta=tta, refine=refine, forward=forward)  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        task.infer_images(model, batch, runtime, batch_size=8, tta=tta, refine=refine, forward=forward)
        rates.append(len(batch) / (time.perf_counter() - start))
    return float(np.median(rates))


def _seed_suffix(seed: int) -> str:
    return "" if seed == 0 else f"_seed{seed}"  # seed 0 keeps the folder names of the earlier runs


def trained_within(run_dir: Path, minutes: float, epochs: int | None = None) -> bool:
    """A finished run of this variant exists and was trained on the same budget (its config records it: max_minutes
    = 1.1 x minutes, and minutes itself when its epochs were fitted to the time), so a table never mixes budgets."""
    import yaml

    config_file = run_dir / "config.yaml"
    if not (run_dir / "best.ckpt").is_file() or not (run_dir / "train_minutes.txt").is_file() or not config_file.is_file():
        return False
    recorded = yaml.safe_load(config_file.read_text()) or {}
    fitted_to = None if epochs else minutes
    return _same(recorded.get("max_minutes"), minutes * 1.1) and _same(recorded.get("minutes"), fitted_to)


def _same(value, expected: float | None) -> bool:
    return value is None if expected is None else value is not None and math.isclose(float(value), expected)


def train_on_budget(config: RunConfig, minutes: float, epochs: int | None = None, retrain: bool = False,
                    label: str = "") -> float:
    """Train ``config`` into ``config.out`` in about ``minutes`` (``shapekit train --minutes``: epochs sized from
    the run's own first epochs), or for ``epochs``, unless a run on the same budget is there already; returns its
    training minutes. Runs stop at 1.1 x ``minutes`` in any case."""
    run_dir = Path(config.out)
    if not trained_within(run_dir, minutes, epochs) or retrain:
        console.print(f"[bold]{label}[/]: {f'{epochs} epochs' if epochs else f'epochs fitted to {minutes:g} min'}")
        if run_dir.exists():
            import shutil
            shutil.rmtree(run_dir)
        start = time.time()
        budget = {"epochs": epochs} if epochs else {"minutes": minutes}
        train(config.model_copy(update={**budget, "max_minutes": minutes * 1.1}), console=console)
        (run_dir / "train_minutes.txt").write_text(f"{(time.time() - start) / 60:.3f}\n")
    return float((run_dir / "train_minutes.txt").read_text())


def shapekit_runs(name: str, variant: str, train_dir: Path, test_dir: Path, args, test: TestLabels) -> list[dict]:
    """Train one model variant within the CPU budget; rows for it without and with TTA (and, for a refined
    model, its own coarse stage)."""
    tag = "_".join(t for t in (variant, args.tag) if t)
    run_dir = WORK / "landmarks" / name / f"run_{args.input_size}_{tag}{_seed_suffix(args.seed)}"
    config = RunConfig(task="landmarks", data=train_dir, out=run_dir, input_size=args.input_size, seed=args.seed,
                       batch_size=8, val_fraction=args.val_fraction, plot_every=10, ema=args.ema, encoder=args.encoder,
                       options=parse_overrides(VARIANTS[variant] + args.opt))
    train_minutes = train_on_budget(config, args.minutes, args.epochs, args.retrain, f"{name} {variant}")
    epochs = trained_epochs(run_dir)
    task, model = load_model(run_dir / "best.ckpt")
    runtime = Runtime.create()
    records = load_landmark_set(test_dir).records
    images = [read_image(r.image_path) for r in records]
    width, height = task.input_shape
    size = f"{width}px" if width == height else f"{width}x{height}px"
    label = f"shapekit {variant} ({size}{', ' + args.tag if args.tag else ''})"
    settings = [(False, True, "")] + ([(True, True, " + TTA")] if not args.no_tta else [])
    if variant == "refined":
        votes = task.test_time_augmentation().crop_votes_only()
        settings += [(votes, True, " + crop votes"), (False, False, ", coarse stage only")]
    rows = []
    for tta, refine, suffix in settings:
        views = "_tta" if tta is True else "_votes" if tta else ""
        report = task.evaluate(model, test_dir, runtime=runtime, tta=tta, refine=refine,
                               out_dir=run_dir / f"test_evaluation{views}{'' if refine else '_coarse'}")
        predict_ips = _predict_speed(task, model, images, runtime, tta, refine)
        rows.append(_row(label + suffix, report, predict_ips, epochs, train_minutes, test))
    if variant == "refined":
        rows.append(_second_pass_row(task, model, test_dir, images, runtime, run_dir, label, epochs, train_minutes,
                                     test))
    if variant == "refined" and not args.no_onnx:
        rows += onnx_rows(run_dir, train_dir, test_dir, images, label, epochs, train_minutes, test)
    return rows


def _second_pass_row(task, model, test_dir: Path, images: list, runtime, run_dir: Path, label: str, epochs,
                     train_minutes, test: TestLabels) -> dict:
    """The same model with one more refiner pass (its crops re-centred on the first pass's points)."""
    trained = task.options
    passes = trained.refine_passes + 1
    task.options = trained.model_copy(update={"refine_passes": passes})
    try:
        report = task.evaluate(model, test_dir, runtime=runtime, out_dir=run_dir / f"test_evaluation_passes{passes}")
        predict_ips = _predict_speed(task, model, images, runtime, False, True)
    finally:
        task.options = trained
    return _row(f"{label}, {passes} refiner passes", report, predict_ips, epochs, train_minutes, test)


def onnx_rows(run_dir: Path, train_dir: Path, test_dir: Path, images: list, label: str, epochs, train_minutes,
              test: TestLabels) -> list[dict]:
    """The same model exported (both stages in one graph) and run by onnxruntime: fp32, and int8 from static
    quantisation calibrated on 32 training images (never on the test split)."""
    from shapekit.engine.onnx import export_onnx, load_predictor

    train_records = load_landmark_set(train_dir).records
    step = max(1, len(train_records) // 32)
    rows = []
    for name, int8, voting in (("ONNX fp32", False, False), ("ONNX fp32 + crop votes", False, True),
                               ("ONNX int8", True, False)):
        path = run_dir / f"model{'-int8' if int8 else ''}.onnx"
        if not path.is_file() or path.stat().st_mtime < (run_dir / "best.ckpt").stat().st_mtime:
            calibration = [read_image(r.image_path) for r in train_records[::step][:32]] if int8 else None
            export_onnx(run_dir / "best.ckpt", path, calibration)
        task, _, forward = load_predictor(path, "onnx")
        runtime = Runtime.create("cpu", "32")
        votes = task.test_time_augmentation().crop_votes_only() if voting else False
        out_dir = run_dir / f"test_evaluation_{path.stem.replace('-', '_')}{'_votes' if voting else ''}"
        report = task.evaluate(None, test_dir, runtime=runtime, forward=forward, tta=votes, out_dir=out_dir)
        predict_ips = _predict_speed(task, None, images, runtime, votes, True, forward=forward)
        rows.append(_row(f"{label}, {name}", report, predict_ips, epochs, train_minutes, test))
    return rows


def dlib_run(train_dir: Path, test_dir: Path, test: TestLabels | None = None) -> dict:
    """ml-morph's recipe: dlib shape predictor, the whole image as the object box."""
    import dlib

    def load(folder):
        data = load_landmark_set(folder)
        images, boxes = [], []
        for record in data.records:
            image = read_image(record.image_path)
            rect = dlib.rectangle(1, 1, record.width - 1, record.height - 1)
            parts = [dlib.point(int(round(x)), int(round(y))) for x, y in record.points]
            images.append(image)
            boxes.append([dlib.full_object_detection(rect, parts)])
        return data, images, boxes

    _, train_images, train_boxes = load(train_dir)
    test_data, test_images, _ = load(test_dir)
    options = dlib.shape_predictor_training_options()
    # ml-morph's shape_trainer.py defaults.
    options.tree_depth = 4
    options.cascade_depth = 15
    options.nu = 0.1
    options.oversampling_amount = 10
    options.feature_pool_size = 500
    options.num_test_splits = 20
    options.num_threads = os.cpu_count() or 1
    options.be_verbose = False
    start = time.time()
    predictor = dlib.train_shape_predictor(train_images, train_boxes, options)
    train_minutes = (time.time() - start) / 60
    start = time.perf_counter()
    predictions = []
    for image, record in zip(test_images, test_data.records):
        shape = predictor(image, dlib.rectangle(1, 1, record.width - 1, record.height - 1))
        predictions.append([[p.x, p.y] for p in shape.parts()])
    predict_ips = len(test_images) / (time.perf_counter() - start)
    true = np.stack([r.points for r in test_data.records])
    summary = summarize_landmark_errors(landmark_errors(np.asarray(predictions, float), true),
                                        np.array([r.long_side for r in test_data.records]), test_data.names)
    return _row("dlib shape predictor (ml-morph)", summary, predict_ips, None, train_minutes, test)


def labels_to_use(name: str, labels: str) -> tuple[Path, str]:
    """The dataset folder to split and a suffix for folder and row names."""
    if labels == "original":
        return DATA / name, ""
    from shapekit.label_check import run_check

    work = WORK / "landmarks" / name
    report = run_check(DATA / name, work / "label_check", clean_out=work / "checked_labels", renumber=True, drop=False)
    console.print(f"{name}: `shapekit check` renumbered {report['n_renumbered']} of {report['n_images']} images")
    return Path(report["clean_dataset"]), "_checked"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--minutes", type=float, default=20.0, help="CPU training budget per model and dataset (default: the task's ~20-minute default)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="coarse: whole-image heatmaps only; refined: with the crop refiner")
    parser.add_argument("--no-tta", action="store_true", help="skip the test-time augmentation rows")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train this many epochs instead of fitting them to --minutes (still stopped at 1.1 x it)")
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of the training part held out to pick best.ckpt (0: train on all of it; "
                             "best.ckpt then follows the training loss)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--no-onnx", action="store_true", help="skip the refined model's onnxruntime rows")
    parser.add_argument("--retrain", action="store_true", help="train even if a run for these settings exists")
    parser.add_argument("--ema", type=float, default=None, help="weight averaging decay")
    parser.add_argument("--encoder", default="mobilenet_v2")
    parser.add_argument("--opt", action="append", default=[], help="task option key=value")
    parser.add_argument("--tag", default="", help="name for this variant's run folder and table rows")
    parser.add_argument("--results", default="landmarks", help="results file name in bench/results")
    parser.add_argument("--merge", action="store_true", help="keep the other datasets already in the results file")
    parser.add_argument("--labels", choices=["original", "checked"], default="original",
                        help="checked: train and test on a copy whose landmark numbering `shapekit check` repaired "
                             "(swapped or mirror-numbered images renumbered, none dropped: the split stays the same)")
    args = parser.parse_args()
    if args.labels == "checked":  # its own run folders and row names
        args.tag = "_".join(t for t in (args.tag, "checked") if t)
    os.environ.setdefault("SHAPEKIT_NO_PROGRESS", "1")
    torch.manual_seed(args.seed)

    results, rows = {}, []
    for name in args.datasets:
        # One split folder per seed: a run is only ever evaluated on the split it was trained beside.
        source, labels = labels_to_use(name, args.labels)
        train_dir, test_dir = split_dataset(source, WORK / "landmarks" / name / f"split{labels}{_seed_suffix(args.seed)}",
                                            args.test_fraction, args.seed)
        n_train, n_test = len(load_landmark_set(train_dir)), len(load_landmark_set(test_dir))
        test = TestLabels.of(source, test_dir)
        entries = [row for variant in args.variants
                   for row in shapekit_runs(name, variant, train_dir, test_dir, args, test)]
        if not args.no_dlib:
            entries.append(dlib_run(train_dir, test_dir, test))
        results[name] = {"n_train": n_train, "n_test": n_test, "minutes_per_model": args.minutes,
                         "command": " ".join(["python"] + sys.argv), "methods": entries}
        for entry in entries:
            rows.append([name, entry["method"], n_train, n_test, entry["epochs"], entry["mean_px"],
                         entry["median_px"], entry["p95_px"], entry["mean_pct_long_side"],
                         entry["median_pct_long_side"], entry["p95_pct_long_side"],
                         entry["mean_pct_long_side_unflagged"], entry["train_minutes"], entry["predict_img_per_s"]])
        print_table("Landmark error on held-out images (original pixels)",
                    ["dataset", "method", "train", "test", "epochs", "mean px", "median px", "p95 px", "mean %",
                     "median %", "p95 %", "mean % unflagged", "train min", "predict img/s"], rows)
        if args.merge:  # one dataset per run, all in one results file
            import json

            previous = RESULTS / f"{args.results}.json"
            kept = json.loads(previous.read_text()).get("datasets", {}) if previous.is_file() else {}
            for key, entry in results.items():  # rows of other methods on the same dataset are kept too
                ours = {m["method"] for m in entry["methods"]}
                entry["methods"] = [m for m in kept.get(key, {}).get("methods", []) if m["method"] not in ours] \
                    + entry["methods"]
            results = {**{k: v for k, v in kept.items() if k not in results}, **results}
        save_results(args.results, {"settings": vars(args), "datasets": results})


if __name__ == "__main__":
    main()
