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


# --- 3D face landmarks (AFLW2000-3D / 3DFAW conventions) ----------------------------------------------

YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))


def box_size(true_xy: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of each image's ground-truth landmark box (M,): the AFLW2000-3D NME normaliser."""
    true_xy = np.asarray(true_xy, float)[..., :2]
    span = np.nanmax(true_xy, axis=1) - np.nanmin(true_xy, axis=1)
    return np.sqrt(span[:, 0] * span[:, 1])


def centre_depth(points: np.ndarray) -> np.ndarray:
    """(M, N, 3) points with each face's mean z removed: only relative depth is defined."""
    points = np.array(points, float, copy=True)
    points[..., 2] -= np.nanmean(points[..., 2], axis=1, keepdims=True)
    return points


def nme_per_image(pred: np.ndarray, true: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Mean 2D point-to-point error of each image divided by its normaliser (M,), a fraction."""
    errors = np.linalg.norm(np.asarray(pred, float)[..., :2] - np.asarray(true, float)[..., :2], axis=-1)
    return np.nanmean(errors, axis=1) / np.asarray(norm, float)


def by_yaw(values: np.ndarray, yaw: np.ndarray, bins=YAW_BINS) -> dict[str, dict]:
    """Mean of per-image values in |yaw| bins; images without a yaw (NaN) fall in no bin."""
    values, yaw = np.asarray(values, float), np.abs(np.asarray(yaw, float))
    out = {}
    for low, high in bins:
        inside = (yaw >= low) & ((yaw < high) | ((high == bins[-1][1]) & (yaw <= high)))
        out[f"{low:g}-{high:g}"] = {"n": int(inside.sum()),
                                    "value": float(np.mean(values[inside])) if inside.any() else None}
    return out


def inter_ocular(true: np.ndarray, corners: tuple[int, int] = (36, 45)) -> np.ndarray:
    """Distance between the outer eye corners (M,), in 3D when z is given (it stays large on profiles)."""
    true = np.asarray(true, float)
    return np.linalg.norm(true[:, corners[0]] - true[:, corners[1]], axis=-1)


def guarded_normaliser(true: np.ndarray, min_fraction: float = 0.1) -> np.ndarray:
    """Inter-ocular distance, NaN where it is under ``min_fraction`` of the box size (profile views in 2D):
    dividing by a few pixels would make one image dominate the mean."""
    iod = inter_ocular(true)
    return np.where(iod >= min_fraction * box_size(true), iod, np.nan)


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` (N, D) moved onto ``target`` by the least-squares similarity (rotation, scale, shift;
    Umeyama 1991); rows with NaN are ignored for the fit."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    ok = np.isfinite(source).all(1) & np.isfinite(target).all(1)
    src, dst = source[ok], target[ok]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(b.T @ a / len(src))
    sign = np.eye(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1, -1] = -1.0  # a reflection is not a pose change
    rotation = u @ sign @ vt
    variance = (a ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sigma) @ sign) / variance) if variance > 0 else 1.0
    return (source - mu_s) @ rotation.T * scale + mu_d


def gte(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """3DFAW Ground Truth Error per image: mean point-to-point error (3D when z is given, relative depth)
    over the guarded inter-ocular distance; NaN where that distance is unusable."""
    pred, true = _relative(pred), _relative(true)
    errors = np.linalg.norm(pred - true, axis=-1)
    return np.nanmean(errors, axis=1) / guarded_normaliser(true)


def cvgtce(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """3DFAW Cross-View Ground Truth Consistency Error per image: the error left after aligning the
    prediction to the truth by a similarity transform, over the guarded inter-ocular distance."""
    pred, true = _relative(pred), _relative(true)
    aligned = np.stack([similarity_align(p, t) for p, t in zip(pred, true)])
    return np.nanmean(np.linalg.norm(aligned - true, axis=-1), axis=1) / guarded_normaliser(true)


def axis_errors(pred: np.ndarray, true: np.ndarray, norm: np.ndarray) -> dict[str, np.ndarray]:
    """Mean absolute error along x, y (and z, relative depth) per image, over the normaliser (fractions)."""
    pred, true = _relative(pred), _relative(true)
    axes = "xyz"[:min(pred.shape[-1], true.shape[-1])]
    return {axis: np.nanmean(np.abs(pred[..., k] - true[..., k]), axis=1) / np.asarray(norm, float)
            for k, axis in enumerate(axes)}


def ced_curve(values: np.ndarray, limit: float = 0.2, steps: int = 81) -> dict[str, list[float]]:
    """Cumulative error distribution of per-image errors (fractions), in plot_ced's format."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    grid = np.linspace(0, limit, steps)
    return {"normalised_error": grid.tolist(),
            "fraction": [float(np.mean(values <= x)) for x in grid] if values.size else []}


def _relative(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, float)
    return centre_depth(points) if points.shape[-1] == 3 else points
