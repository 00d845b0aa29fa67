"""Photo -> template panel: correspondences along the garment outline and a thin-plate-spline warp
(scikit-image's ThinPlateSplineTransform).

Both outlines (the template panel's and the photo's mask contour) are cut at the six landmarks into six
segments (hem, left side and sleeve, left shoulder, neck, right shoulder, right side and sleeve); each segment is
sampled at the same fractions of its arc length on both sides. The thin-plate spline through these pairs puts
the collar, sleeves and hem of the photo where the template has them and the outline on the outline.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.transform import ThinPlateSplineTransform

from ..errors import ShapekitError
from ..templates.garment import OUTLINE_ORDER

PER_SEGMENT = 12


class OutlineOrderError(ShapekitError):
    """The landmarks do not go around the garment's outline in the expected order."""


def _cyclic_order_ok(indices: list[int]) -> bool:
    """True when the indices increase around a cycle (one wrap-around at most)."""
    descents = sum(1 for a, b in zip(indices, indices[1:] + indices[:1]) if b <= a)
    return descents == 1 and len(set(indices)) == len(indices)


def sample_segments(outline: np.ndarray, cuts: list[int], per_segment: int = PER_SEGMENT) -> np.ndarray:
    """Points along a closed polyline: ``per_segment`` per stretch between consecutive cut indices (going
    forwards, wrapping), equally spaced by arc length, each stretch's first point included, its last not."""
    count = len(outline)
    samples = []
    for start, end in zip(cuts, cuts[1:] + cuts[:1]):
        stop = end if end > start else end + count
        path = outline[np.arange(start, stop + 1) % count]
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(steps)])
        targets = np.arange(per_segment) / per_segment * arc[-1]
        samples.append(np.column_stack([np.interp(targets, arc, path[:, 0]), np.interp(targets, arc, path[:, 1])]))
    return np.concatenate(samples)


def contour_cuts(contour: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The photo contour oriented like the template outline, and the index on it of each landmark in outline
    order (its nearest contour point). Raises OutlineOrderError when the landmarks are out of order."""
    for oriented in (contour, contour[::-1]):
        cuts = [int(np.argmin(np.linalg.norm(oriented - landmarks[k], axis=1))) for k in OUTLINE_ORDER]
        if _cyclic_order_ok(cuts):
            return oriented, cuts
    raise OutlineOrderError("the detected landmarks do not go around the garment's outline in order (hem, left "
                            "sleeve, left collar, right collar, right sleeve): is it one garment seen from the front?")


# The outline's stretches between landmarks, in outline order: hem, left side (down from the sleeve: the armpit),
# left shoulder (sleeve end up to the collar), neck, right shoulder, right side.
HEM, LEFT_SIDE, LEFT_SHOULDER, NECK, RIGHT_SHOULDER, RIGHT_SIDE = range(6)


def correspondences(template_outline: np.ndarray, template_cuts: list[int], template_landmarks: np.ndarray,
                    photo_contour: np.ndarray, photo_landmarks: np.ndarray, sleeveless: bool,
                    per_segment: int = PER_SEGMENT) -> tuple[np.ndarray, np.ndarray]:
    """Matching points (template, photo): the six landmarks, then points along the hem and the shoulders
    (sleeve end to collar) of both outlines, and along the sides for sleeveless garments.

    The sides of a sleeved garment are left out: a photo's sleeves often hang over the body (its outline then
    has no armpit) while the template's stand apart, and matching those stretches would fold the warp. The
    neck is left out too: a photo's outline there follows the back of the collar, the template's the front
    neckline."""
    oriented, cuts = contour_cuts(photo_contour, photo_landmarks)
    keep = [HEM, LEFT_SHOULDER, RIGHT_SHOULDER] + ([LEFT_SIDE, RIGHT_SIDE] if sleeveless else [])
    rows = np.array([s * per_segment + k for s in keep for k in range(1, per_segment)])  # landmarks excluded
    template_points = sample_segments(template_outline, template_cuts, per_segment)[rows]
    photo_points = sample_segments(oriented, cuts, per_segment)[rows]
    return (np.concatenate([template_landmarks, template_points]),
            np.concatenate([photo_landmarks, photo_points]))


def fit_tps(source: np.ndarray, target: np.ndarray) -> ThinPlateSplineTransform:
    """A thin-plate spline taking ``source`` points to ``target`` points (duplicate sources dropped: they make
    the spline's system singular)."""
    _, keep = np.unique(np.round(source, 1), axis=0, return_index=True)
    keep = np.sort(keep)
    tps = ThinPlateSplineTransform.from_estimate(source[keep], target[keep])
    if not tps:
        raise ShapekitError("the thin-plate-spline warp could not be fitted to the garment outline")
    return tps


def warp_panel(image: np.ndarray, mask: np.ndarray, tps: ThinPlateSplineTransform, panel: np.ndarray,
               erode_px: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Texture pixels of one panel sampled from the photo. ``tps`` maps texture pixel centres (x, y) to photo
    pixels; ``panel`` is the (H, W) bool panel mask. Returns (colours (H, W, 3) uint8, valid (H, W) bool):
    valid where the panel pixel lands on the garment (mask eroded by ``erode_px`` so edge pixels that mix in
    the background do not count)."""
    height, width = panel.shape
    ys, xs = np.nonzero(panel)
    mapped = tps(np.column_stack([xs, ys]).astype(float)).astype(np.float32)
    map_x = np.full((height, width), -1, np.float32)
    map_y = np.full((height, width), -1, np.float32)
    map_x[ys, xs], map_y[ys, xs] = mapped[:, 0], mapped[:, 1]
    colours = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((2 * erode_px + 1,) * 2, np.uint8)) if erode_px else mask
    valid = cv2.remap(inner.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                      borderValue=0).astype(bool) & panel
    return colours, valid


def fill_nearest(texture: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Every invalid texel takes the colour of the nearest valid one (so only garment colours appear, and the
    texture bleeds garment colour past the panel edges, which hides seams under texture filtering)."""
    if not valid.any():
        raise ShapekitError("no texture pixel landed on the garment")
    _, (rows, cols) = ndimage.distance_transform_edt(~valid, return_indices=True)
    return texture[rows, cols]


def coverage(mask: np.ndarray, photo_to_texture: ThinPlateSplineTransform, panel: np.ndarray) -> float:
    """% of the garment mask's pixels that land inside the template panel."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0.0
    if len(xs) > 60000:  # a fixed subsample is plenty for a percentage
        pick = np.random.default_rng(0).choice(len(xs), 60000, replace=False)
        xs, ys = xs[pick], ys[pick]
    mapped = np.round(photo_to_texture(np.column_stack([xs, ys]).astype(float))).astype(int)
    height, width = panel.shape
    inside = (mapped[:, 0] >= 0) & (mapped[:, 0] < width) & (mapped[:, 1] >= 0) & (mapped[:, 1] < height)
    hit = np.zeros(len(mapped), bool)
    hit[inside] = panel[mapped[inside, 1], mapped[inside, 0]]
    return float(hit.mean() * 100)
