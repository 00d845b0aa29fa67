"""The garment's mask in a photo: the segment model's mask refined by OpenCV's GrabCut around the landmarks.

The shipped clothing model learned street photos; on pale garments in front of pale backgrounds it misses parts
or picks up the scenery. GrabCut (a colour model per image) seeded with the landmark polygon as likely garment,
its shrunken core as certain garment, the segment model's pixels near it as likely garment and everything far
from it as background recovers the garment in either case.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..templates.garment import OUTLINE_ORDER

GRABCUT_SIDE = 320  # GrabCut runs on a copy of about this long side (its cost grows with the pixel count)


def landmark_polygon(landmarks: np.ndarray) -> np.ndarray:
    """(6, 2) landmarks -> the polygon around the garment through them (outline order)."""
    return np.asarray(landmarks, float)[list(OUTLINE_ORDER)]


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon).astype(np.int32)], 1)
    return canvas.astype(bool)


def refine_mask(image: np.ndarray, model_mask: np.ndarray, landmarks: np.ndarray, iterations: int = 4) -> np.ndarray:
    """(H, W) bool garment mask from the photo, the segment model's mask and the six landmarks."""
    height, width = image.shape[:2]
    scale = min(1.0, GRABCUT_SIDE / max(height, width))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    shape = small.shape[:2]
    polygon = landmark_polygon(landmarks) * scale
    centre = polygon.mean(0)
    size = float(np.sqrt(max(cv2.contourArea(polygon.astype(np.float32)), 1.0)))
    inside = _fill(shape, polygon)
    core = _fill(shape, centre + (polygon - centre) * 0.5)
    near = ndimage.distance_transform_edt(~inside) < 0.3 * size
    model_small = cv2.resize(model_mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    # Sleeves hang off the landmark polygon and are thin: the stretch of each sleeve just above its landmark
    # (towards the collar) is seeded as garment, so GrabCut keeps it and the outline reaches the cuffs.
    points = np.asarray(landmarks, float) * scale
    sleeve_sure, sleeve_likely = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    for sleeve, collar in ((2, 0), (3, 1)):
        start, end = points[sleeve], points[sleeve] + 0.35 * (points[collar] - points[sleeve])
        line = (tuple(int(v) for v in np.round(start)), tuple(int(v) for v in np.round(end)))
        cv2.line(sleeve_sure, *line, 1, max(1, round(0.015 * size)))
        cv2.line(sleeve_likely, *line, 1, max(2, round(0.06 * size)))
    sleeve_sure, sleeve_likely = sleeve_sure.astype(bool), sleeve_likely.astype(bool)
    seeds = np.full(shape, cv2.GC_BGD, np.uint8)
    seeds[near] = cv2.GC_PR_BGD
    seeds[inside | (model_small & near) | sleeve_likely] = cv2.GC_PR_FGD
    seeds[core | sleeve_sure] = cv2.GC_FGD
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), seeds, None, background, foreground, iterations,
                cv2.GC_INIT_WITH_MASK)
    garment = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD) | sleeve_sure
    # One garment: the connected piece holding the core (and sleeves), holes filled, edges smoothed a little.
    labels, _ = ndimage.label(garment)
    keep = np.unique(labels[(core | sleeve_sure) & garment])
    garment = np.isin(labels, keep[keep > 0])
    garment = ndimage.binary_fill_holes(garment)
    full = cv2.resize(garment.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR) > 127
    return cv2.morphologyEx(full.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)


def outer_contour(mask: np.ndarray) -> np.ndarray:
    """(K, 2) float points of the largest outer contour of a mask (every boundary pixel)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=cv2.contourArea)[:, 0, :].astype(float)
