"""What the 2D landmark tasks share: data loading and caching, letterboxing, augmentation,
validation in original pixels, prediction files and overlays, evaluation reports.

Subclasses supply the network, its loss, and how raw network output becomes input-pixel points.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import Dataset

from ..engine.inference import ForwardFn, letterboxed_batches
from ..engine.runtime import Runtime
from ..errors import InputError, ShapekitError
from ..io.atomic import save_image, write_json
from ..io.images import read_image
from ..io.landmark_dataset import (OUTPUT_FILES, LandmarkSet, load_landmark_set, split_indices,
                                   write_landmarks)
from ..metrics import landmark_errors, normalisers, parse_normalisation, summarize_landmark_errors
from ..plots import draw_landmarks, plot_ced, plot_overlay_grid
from ..progress import track
from ..transforms import AugmentOptions, KeypointAugmenter, Letterbox, invert_letterbox_points
from ..tta import TestTimeAugmentation
from .base import Task, json_number, json_values, read_inputs

PAD_FILL = 0


class KeypointOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    y_origin: Literal["bottom", "top"] = Field("bottom", description="TPS y axis: bottom (tpsDig) or top")
    flip_pairs: list[tuple[int, int]] | None = Field(None, description="left/right swaps (0-based); None: from names")
    normalisation: str = Field("bbox", description="NME normaliser: bbox, long_side or two landmarks 'i,j'")
    augment: AugmentOptions = Field(default_factory=AugmentOptions)
    input_width: int | None = Field(None, ge=32, description="non-square network input, with input_height "
                                                             "(default: the task's, square for heatmaps)")
    input_height: int | None = Field(None, ge=32)
    turn_to_fit: bool = Field(False, description="with a non-square input: turn images of the other orientation "
                                                 "by 90 degrees (elongated specimens photographed either way)")


class KeypointSamples(Dataset):
    """Letterboxed images cached in memory, with points in input pixels and in original pixels."""

    def __init__(self, landmarks: LandmarkSet, shape: tuple[int, int], augmenter: KeypointAugmenter | None = None,
                 description: str = "loading images", pixel_augment=None, keep_originals: bool = False,
                 extra=None, turn_to_fit: bool = False):
        """``keep_originals``: also cache the original-resolution images (``original_images``), for tasks that
        look at native pixels; ``extra(dataset, index)`` -> more entries for each sample (e.g. crops);
        ``turn_to_fit``: see :meth:`Letterbox.fit`."""
        self.augmenter = augmenter
        self.pixel_augment = pixel_augment
        self.extra = extra
        self.images, self.points, self.letterboxes, self.originals, self.long_sides = [], [], [], [], []
        self.original_images: list[np.ndarray] = []
        for record in track(landmarks.records, description):
            image = read_image(record.image_path)
            if image.shape[:2] != (record.height, record.width):
                raise InputError(record.image_path, "image size changed while loading the dataset")
            box = Letterbox.fit(record.width, record.height, *shape, turn_to_fit=turn_to_fit)
            if keep_originals:
                self.original_images.append(image)
            self.images.append(box.apply_image(image, PAD_FILL))
            self.points.append(box.apply_points(record.points))
            self.letterboxes.append(box.as_array())
            self.originals.append(record.points)
            self.long_sides.append(record.long_side)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, points = self.images[index], self.points[index]
        visible = ~np.isnan(points).any(1)
        if self.augmenter is not None:
            image, points, visible = self.augmenter(image, points, visible)
        if self.pixel_augment is not None:
            image = self.pixel_augment(image)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0),
            "points": torch.from_numpy(np.nan_to_num(points).astype(np.float32)),
            "visible": torch.from_numpy(visible),
            "points_orig": torch.from_numpy(self.originals[index].astype(np.float32)),
            "letterbox": torch.from_numpy(self.letterboxes[index].astype(np.float32)),
            "long_side": torch.tensor(float(self.long_sides[index])),
            "index": torch.tensor(index),
        }
        if self.extra is not None:
            sample.update(self.extra(self, index))
        return sample


def label_flags(data: LandmarkSet) -> dict[str, dict]:
    """Images `shapekit check` flags: name -> {"issue", "message"} (empty when too few complete images to check)."""
    from ..label_check import check_landmarks

    try:
        report = check_landmarks(data)
    except ShapekitError:  # too few complete images for a shape check
        return {}
    return {c.image: {"issue": c.issue, "message": c.message} for c in report["checks"] if c.issue}


def flagged_summary(names: list[str], pct: np.ndarray, flags: dict[str, dict]) -> dict:
    """Which evaluated images (errors ``pct`` (M, N) in % of the long side) the label check flags, and the mean
    error over the others: where the annotation is wrong, so is the error."""
    flagged = np.array([name in flags for name in names], bool)
    others = pct[~flagged]
    return {"flagged": {name: flags[name] for name in names if name in flags},
            "mean_pct_long_side_unflagged": float(np.nanmean(others)) if np.isfinite(others).any() else None}


def _first_names(names: list[str], count: int = 5) -> str:
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")


def label_check_notes(data: LandmarkSet, folder) -> list[str]:
    """What `shapekit check` finds that is surely a labelling mistake (landmarks numbered in another order, or
    doubled): worth fixing before training, since the model learns from every image the same."""
    sure = [image for image, check in label_flags(data).items() if check["issue"] in ("order", "coincident")]
    if not sure:
        return []
    return [f"the label check finds {len(sure)} of {len(data)} images numbered in another order or with doubled "
            f"landmarks ({_first_names(sure)}): `shapekit check {folder} --out REPORT --clean-out FIXED` explains and repairs"]


class KeypointTask(Task):
    Options = KeypointOptions
    monitor = "val/error_pct"
    monitor_mode = "min"
    output_formats = ("tps", "coco", "csv")

    # rows of the output layer per landmark, and that layer's parameter names (for --landmark-map)
    output_rows_per_landmark: int = 1
    output_layer: tuple[str, ...] = ()

    # --- subclass hooks -------------------------------------------------------------------------
    @abstractmethod
    def compute_loss(self, raw: torch.Tensor, batch: dict) -> torch.Tensor: ...

    @abstractmethod
    def decode(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw network output -> (points in input pixels (B, N, 2), confidence (B, N))."""

    # --- data -----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.meta["landmark_names"])

    def load_landmarks(self, folder: Path) -> LandmarkSet:
        return load_landmark_set(folder, y_origin=self.meta.get("y_origin", self.options.y_origin))

    def choose_input_shape(self, data: LandmarkSet) -> tuple[int, int]:
        """Network input (width, height) for this dataset: ``input_width`` x ``input_height`` when both are set,
        else square (--input-size)."""
        shape = self.explicit_input_shape()
        if shape is None:
            if self.config.input_size % 32:
                raise ShapekitError(f"--input-size {self.config.input_size}: must be a multiple of 32")
            return self.config.input_size, self.config.input_size
        if shape[0] % 32 or shape[1] % 32:
            raise ShapekitError(f"input {shape[0]} x {shape[1]}: both sides must be multiples of 32")
        return shape

    def explicit_input_shape(self) -> tuple[int, int] | None:
        width, height = self.options.input_width, self.options.input_height
        if (width is None) != (height is None):
            raise ShapekitError("--opt input_width and input_height go together")
        return None if width is None else (width, height)

    def pixel_augment(self):
        """Extra per-image augmentation after the geometric one (None: nothing)."""
        return None

    def sample_settings(self, training: bool) -> dict[str, Any]:
        """Extra KeypointSamples arguments (keep_originals, extra) for the training or validation set."""
        return {}

    def setup(self):
        data = self.load_landmarks(Path(self.config.data))
        self.data_notes += label_check_notes(data, self.config.data)
        shape = self.choose_input_shape(data)
        flip_pairs = self.options.flip_pairs if self.options.flip_pairs is not None else data.flip_pairs
        for i, j in flip_pairs:
            if not (0 <= i < data.num_landmarks and 0 <= j < data.num_landmarks) or i == j:
                raise ShapekitError(f"flip pair ({i}, {j}) is not two different landmarks in 0..{data.num_landmarks - 1}")
        n_val = round(len(data) * self.config.val_fraction)
        if self.config.val_fraction > 0 and len(data) >= 4:
            train_idx, val_idx = split_indices(len(data), max(n_val, 1) / len(data), self.config.seed)
        else:
            train_idx, val_idx = list(range(len(data))), []
        self.meta.update({
            "landmark_names": data.names, "num_landmarks": data.num_landmarks, "flip_pairs": flip_pairs,
            "y_origin": data.y_origin, "source_format": data.format, "skeleton": data.skeleton,
            "input_shape": list(shape), "pad_fill": PAD_FILL,
            "turn_to_fit": bool(self.options.turn_to_fit and shape[0] != shape[1]),
            "train_ids": [data.records[i].id for i in train_idx], "val_ids": [data.records[i].id for i in val_idx],
        })
        augmenter = KeypointAugmenter(self.options.augment, flip_pairs, PAD_FILL) if self.options.augment.enabled else None
        train = KeypointSamples(data.subset(train_idx), shape, augmenter, "loading training images",
                                self.pixel_augment() if self.options.augment.enabled else None,
                                turn_to_fit=self.turn_to_fit, **self.sample_settings(training=True))
        val = KeypointSamples(data.subset(val_idx), shape, None, "loading validation images",
                              turn_to_fit=self.turn_to_fit, **self.sample_settings(training=False)) if val_idx else None
        self._val_samples = val
        return train, val

    def default_epochs(self, n_train: int) -> int:
        # About 20k augmented samples: ~20 min for MobileNetV2 at 256 px on 2 CPU cores in bf16.
        return int(np.clip(round(20000 / max(1, n_train)), 15, 300))

    # --- training -------------------------------------------------------------------------------
    def training_step(self, model, batch):
        return self.compute_loss(model(batch["image"]), batch), {}

    def validation_step(self, model, batch):
        raw = model(batch["image"])
        loss = self.compute_loss(raw, batch)
        points, _ = self.decode(raw)
        original = invert_letterbox_points(points.float(), batch["letterbox"])
        errors = torch.linalg.norm(original - batch["points_orig"], dim=-1)
        return loss, {"errors": errors, "long_side": batch["long_side"]}

    def validation_metrics(self, outputs):
        errors = outputs["errors"].numpy()
        pct = errors / outputs["long_side"].numpy()[:, None] * 100
        return {"val/mean_px": float(np.nanmean(errors)), "val/median_px": float(np.nanmedian(errors)),
                "val/error_pct": float(np.nanmean(pct))}

    def epoch_plots(self, model, out_dir, device):
        chosen = self.first_val_images(6, device)
        if chosen is None:
            return
        (picks, images), samples = chosen, self._val_samples
        raw = model(images)
        points, _ = self.decode(raw)
        points = points.float().cpu().numpy()
        views = [samples.images[i] for i in picks]
        trues = [samples.points[i] for i in picks]
        titles = [f"error {np.nanmean(np.linalg.norm(p - t, axis=-1)):.1f} px (input scale)" for p, t in zip(points, trues)]
        plot_overlay_grid(views, list(points), trues, titles, Path(out_dir) / "val_overlays.png",
                          "Validation images: green = true, red = predicted")
        self.extra_epoch_plots(raw[:1], views[0], points[0], trues[0], Path(out_dir))

    def extra_epoch_plots(self, raw, image, pred, true, out_dir: Path) -> None:
        """Task-specific figure for the first validation image (heatmap grid for the heatmap task)."""

    def adapt_state_dict(self, state, source_meta, model):
        """Fine-tuning from another landmark set: keep the encoder, re-map the output layer.

        With ``--landmark-map old:new,...`` each new landmark's output rows start from the old landmark's;
        unmapped new landmarks start fresh. Without a map, an output layer of another size starts fresh."""
        mapping = parse_landmark_map(self.config.landmark_map, source_meta["num_landmarks"], self.meta["num_landmarks"])
        if mapping is None:
            return state
        own = model.state_dict()
        rows = self.output_rows_per_landmark
        state = dict(state)
        for key in self.output_layer:
            fresh = own[key].clone()
            for old, new in mapping:
                fresh[new * rows:(new + 1) * rows] = state[key][old * rows:(old + 1) * rows]
            state[key] = fresh
        return state

    # --- inference ------------------------------------------------------------------------------
    def infer_images(self, model: nn.Module | None, images: list[np.ndarray], runtime: Runtime,
                     batch_size: int = 8, forward: ForwardFn | None = None,
                     tta: bool | TestTimeAugmentation = False, refine: bool = True):
        """Points (M, N, 2) in original pixels and confidences (M, N) for RGB uint8 images.

        ``tta``: True averages over the task's test-time augmentation views (whole-image views, and the
        second stage's shifted crops where there is one); a :class:`TestTimeAugmentation` picks the views.
        ``refine``: run the model's second stage where it has one (False: the coarse points only)."""
        augmentation = (tta if isinstance(tta, TestTimeAugmentation)
                        else self.test_time_augmentation() if tta else None)
        count = self.meta["num_landmarks"]
        points_out, conf_out = [np.zeros((0, count, 2))], [np.zeros((0, count))]
        done = 0
        for raw, boxes in letterboxed_batches(images, self.input_shape, model, runtime, batch_size,
                                              int(self.meta.get("pad_fill", PAD_FILL)), forward, augmentation,
                                              self.turn_to_fit):
            points, conf = self.decode(raw)
            params = np.stack([box.as_array() for box in boxes])
            original = invert_letterbox_points(points.double().numpy(), params)
            chunk = images[done:done + len(boxes)]
            done += len(boxes)
            if refine:
                original = self.refine_points(model, forward, chunk, original, params, runtime,
                                              augmentation.crop_shifts if augmentation else ())
            points_out.append(original)
            conf_out.append(conf.float().numpy())
        return np.concatenate(points_out), np.concatenate(conf_out)

    def refine_points(self, model, forward, images: list[np.ndarray], points: np.ndarray, letterboxes: np.ndarray,
                      runtime: Runtime, shifts=()) -> np.ndarray:
        """Second-stage hook: coarse points (B, N, 2) in original pixels -> refined ones (default: unchanged);
        ``shifts``: test-time crop-centre shifts to average over (see :class:`TestTimeAugmentation`)."""
        return points

    def predict(self, model, inputs, out, fmt: str = "tps", runtime: Runtime | None = None, batch_size: int = 8,
                overlays: bool = True, y_origin: str | None = None, forward=None, console=None,
                tta: "bool | TestTimeAugmentation" = False, **_):
        if fmt not in OUTPUT_FILES:
            raise ShapekitError(f"--format {fmt!r}: choose tps, coco or csv for landmark tasks")
        runtime = runtime or Runtime.create()
        out = Path(out)
        images, kept, failed = read_inputs(inputs, console)
        points, conf = self.infer_images(model, images, runtime, batch_size, forward, tta=tta)
        target = out / OUTPUT_FILES[fmt]
        if any(target.resolve() == p.resolve() for p in kept):
            raise ShapekitError(f"{target}: refusing to overwrite an input file")
        write_landmarks(target, fmt, [p.name for p in kept], points, self.names,
                        heights=[im.shape[0] for im in images], widths=[im.shape[1] for im in images],
                        y_origin=y_origin or self.meta.get("y_origin", "bottom"), confidence=conf,
                        skeleton=self.meta.get("skeleton"))
        if overlays:
            for path, image, pts in track(list(zip(kept, images, points)), "writing overlays"):
                save_image(out / "overlays" / f"{path.stem}.png",
                           draw_landmarks(image, pts, skeleton=self.meta.get("skeleton")))
        return {"n_images": len(kept), "file": str(target), "failed": failed, "points": points, "confidence": conf,
                "images": [str(p) for p in kept]}

    def evaluate(self, model, data, runtime: Runtime | None = None, batch_size: int = 8,
                 normalisation: str | None = None, out_dir: Path | None = None, forward=None,
                 tta: "bool | TestTimeAugmentation" = False, refine: bool = True, **_):
        runtime = runtime or Runtime.create()
        dataset = self.load_landmarks(Path(data))
        if dataset.num_landmarks != self.meta["num_landmarks"]:
            raise InputError(dataset.annotation_file, f"has {dataset.num_landmarks} landmarks per image, the model "
                                                      f"predicts {self.meta['num_landmarks']}")
        images = [read_image(r.image_path) for r in track(dataset.records, "reading images")]
        pred, conf = self.infer_images(model, images, runtime, batch_size, forward, tta=tta, refine=refine)
        true = np.stack([r.points for r in dataset.records])
        errors = landmark_errors(pred, true)
        long_sides = np.array([r.long_side for r in dataset.records], float)
        norm_spec = normalisation or self.options.normalisation
        mode, pair = parse_normalisation(norm_spec, self.names)
        report = summarize_landmark_errors(errors, long_sides, self.names, normalisers(true, long_sides, mode, pair),
                                           norm_spec)
        report["images"] = [r.image_path.name for r in dataset.records]
        report["data"] = str(data)
        report["mean_confidence"] = float(np.mean(conf))
        flags = label_flags(dataset)
        report["label_check"] = flagged_summary(report["images"], errors / long_sides[:, None] * 100, flags)
        if out_dir is not None:
            out_dir = Path(out_dir)
            plot_ced({"shapekit": report["ced"]}, out_dir / "ced.png", norm_spec)
            worst = np.argsort([-np.nan_to_num(v) for v in report["per_image_mean_px"]])[:6]
            titles = [f"{'[label check] ' if report['images'][i] in flags else ''}{report['images'][i]}: "
                      f"{report['per_image_mean_px'][i]:.1f} px" for i in worst]
            plot_overlay_grid([images[i] for i in worst], [pred[i] for i in worst], [true[i] for i in worst],
                              titles, out_dir / "worst_images.png",
                              "Largest errors: green true, red predicted ([label check]: annotation flagged)")
            write_json(out_dir / "evaluation.json", report)
        report["_predictions"] = pred
        return report

    def print_report(self, report, console) -> None:
        from rich.table import Table

        table = Table(title=f"{report['n_images']} images, {report['data']}")
        for col in ("landmark", "n", "mean px", "median px", "max px", "mean % long side"):
            table.add_column(col, justify="right")
        for row in report["per_landmark"]:
            table.add_row(row["name"], str(row["n"]), _f(row["mean_px"]), _f(row["median_px"]), _f(row["max_px"]),
                          _f(row["mean_pct_long_side"], 3))
        table.add_row("[bold]all", str(report["n_landmarks"]), f"[bold]{report['mean_px']:.2f}",
                      _f(report["median_px"]), "", f"[bold]{report['mean_pct_long_side']:.3f}")
        console.print(table)
        pck = "  ".join(f"PCK@{k}%: {v:.3f}" for k, v in report["pck_pct_long_side"].items())
        nme = report.get("nme", {})
        console.print(f"NME ({nme.get('normalisation')}): {_f(nme.get('value'), 4)}   {pck}")
        flagged = (report.get("label_check") or {}).get("flagged") or {}
        if flagged:
            console.print(f"The label check flags {len(flagged)} of these images ({_first_names(list(flagged))}; "
                          f"`shapekit check` explains); "
                          f"mean error on the others: {_f(report['label_check']['mean_pct_long_side_unflagged'], 3)} "
                          f"% of the long side")

    # --- web app --------------------------------------------------------------------------------
    web_kind = "landmarks"

    def predict_image(self, model, image, runtime, forward: ForwardFn | None = None,
                      tta: "bool | TestTimeAugmentation" = False, **_):
        points, conf = self.infer_images(model, [image], runtime, batch_size=1, forward=forward, tta=tta)
        return {"kind": self.web_kind, "names": self.names, "points": json_values(points[0]),
                "confidence": json_values(conf[0]), "skeleton": [list(e) for e in self.meta.get("skeleton") or []],
                "score": json_number(np.nanmean(conf[0]) if np.isfinite(conf[0]).any() else None)}


def _f(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def parse_landmark_map(spec: str | None, old_count: int, new_count: int) -> list[tuple[int, int]] | None:
    """'old:new,old:new' (0-based) -> [(old, new), ...]; one-line errors for bad indices or duplicate targets.

    One old landmark may feed several new ones; each new landmark is fed at most once."""
    if spec is None or not str(spec).strip():
        return None
    pairs: list[tuple[int, int]] = []
    for item in str(spec).replace(" ", "").split(","):
        parts = item.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ShapekitError(f"--landmark-map {spec!r}: {item!r} is not old:new (two landmark indices, 0-based)")
        old, new = int(parts[0]), int(parts[1])
        if old >= old_count:
            raise ShapekitError(f"--landmark-map {spec!r}: old landmark {old} out of range (the checkpoint has "
                                f"{old_count}: 0..{old_count - 1})")
        if new >= new_count:
            raise ShapekitError(f"--landmark-map {spec!r}: new landmark {new} out of range (this data has "
                                f"{new_count}: 0..{new_count - 1})")
        if any(new == n for _, n in pairs):
            raise ShapekitError(f"--landmark-map {spec!r}: new landmark {new} is fed twice")
        pairs.append((old, new))
    return pairs


def cross_validate(config, data: Path, rounds: int, out: Path, runtime: Runtime | None = None,
                   console=None) -> dict[str, Any]:
    """K-round cross-validation: every image is predicted once by a model that never trained on it.

    Round folders, their runs and the out-of-fold predictions go under ``out``; rounds whose model
    already exists are not trained again (an interrupted cross-validation picks up where it stopped).
    """
    from ..engine import load_model, read_checkpoint, train
    from ..engine.checkpoint import unfinished
    from ..io.landmark_dataset import kfold_indices, write_subsets

    from .base import get_task

    out = Path(out)
    runtime = runtime or Runtime.create()
    probe = get_task(config.task)(config)
    dataset = probe.load_landmarks(Path(data))
    folds = kfold_indices(len(dataset), rounds, config.seed)
    everything = set(range(len(dataset)))
    predictions = np.full((len(dataset), dataset.num_landmarks, 2), np.nan)
    fold_of = np.zeros(len(dataset), int)
    for k, test_idx in enumerate(folds):
        round_dir = out / f"round_{k + 1}"
        folders = write_subsets(data, round_dir / "data", {"train": sorted(everything - set(test_idx)),
                                                          "test": test_idx})
        run = round_dir / "run"
        if not (run / "best.ckpt").is_file() or (run / "last.ckpt").is_file() and unfinished(
                read_checkpoint(run / "last.ckpt")):
            if console is not None:
                console.print(f"[bold]round {k + 1}/{rounds}[/]: training on {len(everything) - len(test_idx)} images, "
                              f"{len(test_idx)} held out")
            round_config = config.model_copy(update={"data": folders["train"], "out": run})
            train(round_config, resume=(run / "last.ckpt").is_file(), console=console)
        task, model = load_model(run / "best.ckpt")
        images = [read_image(dataset.records[i].image_path) for i in test_idx]
        predictions[test_idx], _ = task.infer_images(model, images, runtime)
        fold_of[test_idx] = k
    true = np.stack([r.points for r in dataset.records])
    errors = landmark_errors(predictions, true)
    long_sides = np.array([r.long_side for r in dataset.records], float)
    report = summarize_landmark_errors(errors, long_sides, dataset.names)
    report["rounds"] = []
    for k, test_idx in enumerate(folds):
        part = summarize_landmark_errors(errors[test_idx], long_sides[test_idx], dataset.names)
        report["rounds"].append({"round": k + 1, "n_images": part["n_images"], "mean_px": part["mean_px"],
                                 "mean_pct_long_side": part["mean_pct_long_side"],
                                 "per_landmark_mean_px": [r["mean_px"] for r in part["per_landmark"]]})
    report["data"] = str(data)
    report["task"] = config.task
    report["images"] = [r.image_path.name for r in dataset.records]
    tps_path = write_landmarks(out / "out_of_fold.tps", "tps", report["images"], predictions, dataset.names,
                               heights=[r.height for r in dataset.records], widths=[r.width for r in dataset.records],
                               y_origin=dataset.y_origin, scales=[r.scale for r in dataset.records])
    report["out_of_fold_tps"] = str(tps_path)
    write_json(out / "crossval.json", report)
    report["_predictions"] = predictions
    return report


def print_crossval(report: dict[str, Any], console) -> None:
    from rich.table import Table

    rounds = report["rounds"]
    table = Table(title=f"{len(rounds)}-round cross-validation, {report['task']}, {report['data']}")
    table.add_column("landmark")
    for r in rounds:
        table.add_column(f"round {r['round']}", justify="right")
    table.add_column("all (px)", justify="right")
    table.add_column("% long side", justify="right")
    for k, row in enumerate(report["per_landmark"]):
        table.add_row(row["name"], *[_f(r["per_landmark_mean_px"][k]) for r in rounds], _f(row["mean_px"]),
                      _f(row["mean_pct_long_side"], 3))
    table.add_row("[bold]mean", *[_f(r["mean_px"]) for r in rounds], f"[bold]{report['mean_px']:.2f}",
                  f"[bold]{report['mean_pct_long_side']:.3f}")
    console.print(table)
    console.print(f"out-of-fold predictions: {report['out_of_fold_tps']}")
