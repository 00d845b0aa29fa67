"""Figures: training curves, heatmap grids, landmark overlays, CED curves."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io.atomic import save_figure  # noqa: E402

TRUE_COLOUR = (40, 200, 60)
PRED_COLOUR = (230, 40, 40)


def plot_training_curves(metrics_csv: Path, path: Path) -> Path | None:
    """Loss curves (train/val) and, when present, validation error per epoch."""
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.exists():
        return None
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    epochs = [int(r["epoch"]) + 1 for r in rows]

    def column(name):
        values = [float(r[name]) if r.get(name) not in (None, "") else math.nan for r in rows]
        return values if any(not math.isnan(v) for v in values) else None

    error_keys = [k for k in rows[-1] if k.startswith("val_") and k != "val_loss"]
    fig, axes = plt.subplots(1, 2 if error_keys else 1, figsize=(11 if error_keys else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for name, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = column(name)
        if values:
            ax.plot(epochs, values, marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if error_keys:
        ax = axes[0, 1]
        for key in error_keys:
            values = column(key)
            if values:
                ax.plot(epochs, values, marker=".", label=key.removeprefix("val_"))
        ax.set_xlabel("epoch")
        ax.set_title("Validation metrics")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def plot_heatmap_grid(image: np.ndarray, heatmaps: np.ndarray, pred: np.ndarray, true: np.ndarray | None,
                      names: Sequence[str], stride: int, path: Path) -> Path:
    """One panel per landmark: its heatmap over the image, predicted (red) and true (green) positions.

    ``image`` is the network input (H, W, 3); ``pred``/``true`` are in input pixels.
    """
    count = len(heatmaps)
    cols = math.ceil(math.sqrt(count + 1))
    rows = math.ceil((count + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    height, width = image.shape[:2]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    panels = axes.ravel()
    panels[0].imshow(image, extent=extent)
    panels[0].imshow(heatmaps.max(0), cmap="hot", alpha=0.55, vmin=0, vmax=max(0.2, float(heatmaps.max())),
                     extent=(-0.5, heatmaps.shape[2] * stride - 0.5, heatmaps.shape[1] * stride - 0.5, -0.5))
    panels[0].set_title("all", fontsize=8)
    for k in range(count):
        ax = panels[k + 1]
        ax.imshow(image.mean(-1), cmap="gray", extent=extent)
        # Scale to the peak (at least 0.2) so weak early heatmaps stay visible; the title gives the peak.
        ax.imshow(heatmaps[k], cmap="hot", alpha=0.6, vmin=0, vmax=max(0.2, float(heatmaps[k].max())),
                  extent=(-0.5, heatmaps.shape[2] * stride - 0.5, heatmaps.shape[1] * stride - 0.5, -0.5))
        if true is not None and not np.isnan(true[k]).any():
            ax.plot(*true[k], "o", mfc="none", mec="lime", ms=7, mew=1.5)
        ax.plot(*pred[k], "x", color="cyan", ms=6, mew=1.5)
        ax.set_title(f"{names[k]}  peak {heatmaps[k].max():.2f}", fontsize=8)
    for ax in panels:
        ax.set_axis_off()
    fig.suptitle("Heatmaps of one validation image (o true, x predicted)", fontsize=10)
    return save_figure(fig, path)


def draw_landmarks(image: np.ndarray, pred: np.ndarray | None, true: np.ndarray | None = None,
                   names: Sequence[str] | None = None, skeleton: Sequence[Sequence[int]] | None = None,
                   max_side: int = 900) -> np.ndarray:
    """Overlay for one image: predicted points red with numbers, true points green, error lines."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    radius = max(2, round(max(canvas.shape[:2]) / 160))
    thickness = max(1, radius // 2)

    def pt(p):
        return (int(round((p[0] + 0.5) * scale - 0.5)), int(round((p[1] + 0.5) * scale - 0.5)))

    if pred is not None and skeleton:
        for a, b in skeleton:  # COCO skeletons are 1-based
            if max(a, b) <= len(pred) and not np.isnan(pred[[a - 1, b - 1]]).any():
                cv2.line(canvas, pt(pred[a - 1]), pt(pred[b - 1]), (250, 200, 40), thickness, cv2.LINE_AA)
    if true is not None:
        for k, p in enumerate(true):
            if np.isnan(p).any():
                continue
            if pred is not None and not np.isnan(pred[k]).any():
                cv2.line(canvas, pt(p), pt(pred[k]), (255, 255, 0), thickness, cv2.LINE_AA)
            cv2.circle(canvas, pt(p), radius + 1, TRUE_COLOUR, thickness, cv2.LINE_AA)
    if pred is not None:
        for k, p in enumerate(pred):
            if np.isnan(p).any():
                continue
            cv2.circle(canvas, pt(p), radius, PRED_COLOUR, -1, cv2.LINE_AA)
            label = str(k + 1)
            org = (pt(p)[0] + radius + 1, pt(p)[1] - radius - 1)
            cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.35 + radius * 0.05, (0, 0, 0), thickness + 2,
                        cv2.LINE_AA)
            cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.35 + radius * 0.05, (255, 255, 255), thickness,
                        cv2.LINE_AA)
    return canvas


def _image_grid(count: int, width: float = 4.2, height: float = 4.2, cols: int = 3):
    """A figure with up to ``cols`` image panels per row, axes hidden."""
    cols = max(1, min(cols, count))
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig, axes


def plot_overlay_grid(images: Sequence[np.ndarray], preds: Sequence[np.ndarray], trues: Sequence[np.ndarray | None],
                      titles: Sequence[str], path: Path, suptitle: str = "") -> Path:
    fig, axes = _image_grid(len(images))
    for ax, image, pred, true, title in zip(axes.ravel(), images, preds, trues, titles):
        ax.imshow(draw_landmarks(image, pred, true, max_side=600))
        ax.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path)


def plot_ced(curves: dict[str, dict], path: Path, normalisation: str) -> Path:
    """Cumulative error distribution: fraction of landmarks with normalised error <= x."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, ced in curves.items():
        if ced.get("fraction"):
            ax.plot(np.asarray(ced["normalised_error"]) * 100, ced["fraction"], label=label)
    ax.set_xlabel(f"error, % of {normalisation}")
    ax.set_ylabel("fraction of landmarks")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Cumulative error distribution")
    return save_figure(fig, path)


MASK_COLOURS = np.array([[0, 0, 0], [0, 170, 255], [255, 60, 60], [255, 210, 0], [120, 255, 120], [200, 80, 255],
                         [255, 140, 40], [0, 160, 120], [150, 150, 255], [255, 120, 200]], np.uint8)


def mask_colours(count: int) -> np.ndarray:
    reps = int(np.ceil(count / len(MASK_COLOURS)))
    return np.tile(MASK_COLOURS, (reps, 1))[:max(count, 2)]


def mask_overlay(image: np.ndarray, mask: np.ndarray, truth: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """Image with the predicted mask tinted by class and, optionally, the true mask outlined in green."""
    colours = mask_colours(int(mask.max()) + 1)
    tint = colours[mask]
    out = image.astype(np.float32)
    chosen = mask > 0
    out[chosen] = (1 - alpha) * out[chosen] + alpha * tint[chosen]
    out = out.astype(np.uint8)
    edge = max(1, round(max(image.shape[:2]) / 300))
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (0, 120, 255), edge)
    if truth is not None:
        contours, _ = cv2.findContours((truth > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (40, 255, 40), edge)
    return out


def cutout(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA cut-out: the image where the mask is set, transparent elsewhere."""
    return np.dstack([image, (mask > 0).astype(np.uint8) * 255])


def plot_mask_grid(images, preds, truths, path: Path, suptitle: str = "", titles=None) -> Path:
    fig, axes = _image_grid(len(images), 4.0, 4.4)
    for k, (ax, image, pred, truth) in enumerate(zip(axes.ravel(), images, preds, truths)):
        ax.imshow(mask_overlay(image, pred, truth))
        if titles:
            ax.set_title(titles[k], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path)


def plot_mesh_predictions(inputs, strips, titles, path: Path) -> Path:
    """Each row: the input view, then the turntable of the predicted textured mesh."""
    rows = len(inputs)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 2.2 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 6]})
    for k, (image, strip, title) in enumerate(zip(inputs, strips, titles)):
        axes[k, 0].imshow(image)
        axes[k, 0].set_title(f"input: {title}", fontsize=8)
        axes[k, 1].imshow(strip)
        axes[k, 1].set_title("predicted mesh, turntable", fontsize=8)
        for ax in axes[k]:
            ax.set_axis_off()
    return save_figure(fig, path)


# Polylines of the 68-point face scheme (jaw, brows, nose, eyes, lips), for drawing a 3D face.
IBUG68_CURVES = (list(range(0, 17)), list(range(17, 22)), list(range(22, 27)), list(range(27, 31)),
                 list(range(31, 36)), list(range(36, 42)) + [36], list(range(42, 48)) + [42],
                 list(range(48, 60)) + [48], list(range(60, 68)) + [60])


def plot_landmarks_3d(points: np.ndarray, path: Path, title: str = "") -> Path:
    """Front and side views of 3D face landmarks (x right, y down, z towards the camera)."""
    points = np.asarray(points, float)
    fig = plt.figure(figsize=(9, 4.5))
    curves = IBUG68_CURVES if len(points) == 68 else [list(range(len(points)))]
    for k, (elev, azim, label) in enumerate(((90, -90, "front (x, y)"), (0, 0, "side (z, y)"))):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        # plotted as (x, z, -y): matplotlib's z axis points up, the image's y points down
        for curve in curves:
            ax.plot(points[curve, 0], points[curve, 2], -points[curve, 1], color="tab:blue", lw=1)
        ax.scatter(points[:, 0], points[:, 2], -points[:, 1], c=points[:, 2], cmap="viridis", s=8)
        ax.view_init(elev=0, azim=-90 if k == 0 else 0)
        span = np.nanmax(np.nanmax(points, 0) - np.nanmin(points, 0)) / 2
        mid = (np.nanmax(points, 0) + np.nanmin(points, 0)) / 2
        ax.set_xlim(mid[0] - span, mid[0] + span)
        ax.set_ylim(mid[2] - span, mid[2] + span)
        ax.set_zlim(-mid[1] - span, -mid[1] + span)
        ax.set_xlabel("x")
        ax.set_ylabel("z")
        ax.set_zlabel("-y")
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
