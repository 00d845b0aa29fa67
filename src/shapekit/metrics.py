"""Accuracy metrics, computed in original image pixels."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ShapekitError

PCK_THRESHOLDS_PCT = (0.5, 1.0, 2.0, 5.0)  # % of the image's long side


def landmark_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distances (M, N); NaN where the true landmark is missing."""
    return np.linalg.norm(np.asarray(pred, float) - np.asarray(true, float), axis=-1)


def parse_normalisation(spec: str, names: Sequence[str]) -> tuple[str, tuple[int, int] | None]:
    """"bbox", "long_side", or two landmarks "i,j" (0-based indices or names), e.g. "36,45"."""
    spec = spec.strip()
    if spec in ("bbox", "long_side"):
        return spec, None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2:
        raise ShapekitError(f"normalisation {spec!r}: use bbox, long_side or two landmarks like 0,1")
    indices = []
    for part in parts:
        if part.isdigit():
            index = int(part)
        elif part in names:
            index = list(names).index(part)
        else:
            raise ShapekitError(f"normalisation {spec!r}: {part!r} is not a landmark index or name")
        if not 0 <= index < len(names):
            raise ShapekitError(f"normalisation {spec!r}: landmark {index} out of range 0..{len(names) - 1}")
        indices.append(index)
    return "pair", (indices[0], indices[1])


def normalisers(true: np.ndarray, long_sides: np.ndarray, mode: str, pair: tuple[int, int] | None = None) -> np.ndarray:
    """Per-image normalising length (M,) for NME."""
    true = np.asarray(true, float)
    if mode == "long_side":
        return np.asarray(long_sides, float)
    if mode == "bbox":
        span = np.nanmax(true, axis=1) - np.nanmin(true, axis=1)
        return np.hypot(span[:, 0], span[:, 1])
    i, j = pair
    return np.linalg.norm(true[:, i] - true[:, j], axis=-1)


def summarize_landmark_errors(errors: np.ndarray, long_sides: np.ndarray, names: Sequence[str],
                              norms: np.ndarray | None = None, norm_name: str = "bbox",
                              pck_thresholds_pct: Sequence[float] = PCK_THRESHOLDS_PCT) -> dict:
    """Summary of an (M, N) error matrix in pixels; NaN entries (missing truth) are skipped."""
    errors = np.asarray(errors, float)
    long_sides = np.asarray(long_sides, float)
    pct = errors / long_sides[:, None] * 100.0
    valid = ~np.isnan(errors)
    if not valid.any():
        raise ShapekitError("no annotated landmarks to evaluate")
    per_landmark = []
    for k, name in enumerate(names):
        column = errors[:, k][valid[:, k]]
        column_pct = pct[:, k][valid[:, k]]
        per_landmark.append({
            "index": k, "name": name, "n": int(column.size),
            "mean_px": _safe(np.mean, column), "median_px": _safe(np.median, column),
            "max_px": _safe(np.max, column), "mean_pct_long_side": _safe(np.mean, column_pct),
        })
    summary = {
        "n_images": int(errors.shape[0]),
        "n_landmarks": int(valid.sum()),
        "mean_px": float(np.nanmean(errors)),
        "median_px": float(np.nanmedian(errors)),
        "std_px": float(np.nanstd(errors)),
        "mean_pct_long_side": float(np.nanmean(pct)),
        "median_pct_long_side": float(np.nanmedian(pct)),
        "p95_px": float(np.nanpercentile(errors, 95)),
        "p95_pct_long_side": float(np.nanpercentile(pct, 95)),
        "pck_pct_long_side": {f"{t:g}": float(np.mean(pct[valid] <= t)) for t in pck_thresholds_pct},
        "per_landmark": per_landmark,
        "per_image_mean_px": [float(v) for v in np.nanmean(np.where(valid, errors, np.nan), axis=1)],
    }
    if norms is not None:
        norms = np.asarray(norms, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            normalised = errors / norms[:, None]
        good = valid & np.isfinite(normalised)
        summary["nme"] = {"normalisation": norm_name, "value": float(np.mean(normalised[good])) if good.any() else None}
        curve_x = np.linspace(0, 0.2, 81)
        summary["ced"] = {"normalised_error": curve_x.tolist(),
                          "fraction": [float(np.mean(normalised[good] <= x)) for x in curve_x] if good.any() else []}
    return summary


def _safe(fn, values) -> float | None:
    return float(fn(values)) if len(values) else None


# --- segmentation ------------------------------------------------------------------------------------

def mask_confusion(pred: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) pixel counts, rows = true class, columns = predicted class."""
    index = true.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def binary_mask_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """IoU, Dice and pixel accuracy of one binary mask; an empty truth and empty prediction scores 1."""
    pred, true = pred.astype(bool), true.astype(bool)
    intersection = np.count_nonzero(pred & true)
    union = np.count_nonzero(pred | true)
    total = np.count_nonzero(pred) + np.count_nonzero(true)
    return {"iou": intersection / union if union else 1.0, "dice": 2 * intersection / total if total else 1.0,
            "pixel_accuracy": float(np.mean(pred == true)), "intersection": intersection, "union": union}


def summarize_segmentation(per_image: list[dict[str, float]], confusion: np.ndarray | None = None,
                           class_names: list[str] | None = None) -> dict:
    """Mean of per-image scores, pooled IoU (all pixels of all images), and per-class IoU for label maps."""
    iou = np.array([s["iou"] for s in per_image])
    summary = {
        "n_images": len(per_image),
        "iou_mean": float(iou.mean()), "iou_median": float(np.median(iou)), "iou_min": float(iou.min()),
        "iou_pooled": float(sum(s["intersection"] for s in per_image) / max(1, sum(s["union"] for s in per_image))),
        "dice_mean": float(np.mean([s["dice"] for s in per_image])),
        "pixel_accuracy_mean": float(np.mean([s["pixel_accuracy"] for s in per_image])),
    }
    if confusion is not None:
        tp = np.diag(confusion).astype(float)
        union = confusion.sum(0) + confusion.sum(1) - tp
        present = confusion.sum(1) > 0
        per_class = np.divide(tp, union, out=np.full_like(tp, np.nan), where=union > 0)
        summary["miou"] = float(np.nanmean(per_class[present])) if present.any() else None
        summary["per_class_iou"] = {name: (None if np.isnan(v) else float(v))
                                    for name, v in zip(class_names or range(len(tp)), per_class)}
        summary["pixel_accuracy_pooled"] = float(tp.sum() / max(1, confusion.sum()))
    return summary
