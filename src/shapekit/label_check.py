"""`shapekit check`: find likely annotation mistakes in a landmark dataset before training on it.

Every specimen is compared with the dataset's Procrustes mean shape. Specimens far from it (robust
z-score of the Procrustes distance above a threshold) are flagged and explained, most specific first:
two landmarks that coincide (a double click), landmarks numbered in another order (two swapped, or the
numbering mirror-wise) when renumbering makes the shape typical again, one landmark far from where the
other landmarks put it, or an unusual shape overall (posture,
damage or a different kind of specimen: worth a look, not necessarily wrong).

The labels alone decide; no model is involved, so the check can run before the first training and its
verdict cannot be biased by a model's own errors. Hand-written because no maintained Python package
does landmark-configuration outlier checks (geomorph's plotOutliers is R and ranks shapes only).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ShapekitError
from .io.atomic import write_json, write_text
from .io.landmark_dataset import LandmarkSet, load_landmark_set, write_subsets
from .morphometrics import centroid_size, gpa, normalise, procrustes_distance, rotate_onto

DEFAULT_THRESHOLD = 3.5  # Iglewicz & Hoaglin's cut-off for the modified z-score
COINCIDENT_FRACTION = 0.005  # of the centroid size: two landmarks this close were clicked on the same spot
COINCIDENT_RARITY = 0.02  # ... unless they are that close in more than 2 % of the images (closed lips, occlusion)
ORDER_GAIN = 0.5  # a renumbering (or mirroring) explains an outlier when it at least halves its distance


@dataclass
class SpecimenCheck:
    index: int
    image: str
    procrustes_distance: float
    shape_z: float
    worst_landmark: int  # 1-based
    worst_landmark_z: float
    worst_offset_px: float
    expected_xy: tuple[float, float]  # where the other landmarks put the worst landmark
    issue: str = ""  # coincident | order | landmark | shape; empty when not flagged
    landmarks: tuple[int, ...] = ()  # 1-based landmarks the issue is about
    renumbering: tuple[int, ...] = ()  # for "order": landmark k should be the annotated landmark renumbering[k-1]
    message: str = ""


def robust_z(values: np.ndarray) -> np.ndarray:
    """Modified z-score 0.6745 (x - median) / MAD, along axis 0; insensitive to the outliers it looks for."""
    values = np.asarray(values, float)
    median = np.median(values, axis=0)
    mad = np.median(np.abs(values - median), axis=0)
    # A MAD of 0 (most values equal) would flag everything else: fall back to the mean deviation.
    mad = np.where(mad > 0, mad, np.mean(np.abs(values - median), axis=0) + 1e-12)
    return 0.6745 * (values - median) / mad


def expected_positions(points: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Where each landmark should lie given all the others: the mean shape fitted (similarity transform,
    least squares) to the specimen's other landmarks, for every landmark in turn. (M, N, 2) -> (M, N, 2).

    In 2D a similarity transform is z -> a z + b with complex a and b, so each leave-one-out fit is a
    closed-form complex ratio and all specimens are fitted at once."""
    specimen = points[..., 0] + 1j * points[..., 1]
    template = mean[:, 0] + 1j * mean[:, 1]
    expected = np.empty_like(specimen)
    for k in range(specimen.shape[1]):
        others = np.arange(specimen.shape[1]) != k
        p, q = specimen[:, others], template[others]
        p_centre, q_centre = p.mean(axis=1, keepdims=True), q.mean()
        scale_rotation = ((p - p_centre) * np.conj(q - q_centre)).sum(axis=1) / (np.abs(q - q_centre) ** 2).sum()
        expected[:, k] = scale_rotation * (template[k] - q_centre) + p_centre[:, 0]
    return np.stack([expected.real, expected.imag], axis=-1)


def _complete(points: np.ndarray, source: str) -> tuple[list[int], np.ndarray]:
    keep = [k for k, p in enumerate(points) if not np.isnan(p).any()]
    if points.shape[1] < 3:
        raise ShapekitError(f"{source}: a shape check needs at least 3 landmarks per image, found {points.shape[1]}")
    if len(keep) < 5:
        raise ShapekitError(f"{source}: a shape check needs at least 5 images with every landmark placed, "
                            f"found {len(keep)}")
    return keep, points[keep]


def _double_clicks(points: np.ndarray, sizes: np.ndarray) -> dict[int, tuple[int, int]]:
    """Specimen row -> its closest pair of landmarks that coincide there but in at most COINCIDENT_RARITY of
    the specimens. Pairs that often meet (a closed mouth's inner lips, contour points of a face in profile)
    are no sign of a double click."""
    relative = (points / sizes[:, None, None]).astype(np.float32)  # in centroid sizes; float32 halves (M, N, N)
    gaps = np.stack([np.linalg.norm(relative[:, k:k + 1] - relative, axis=-1) for k in range(points.shape[1])], axis=1)
    met = gaps < COINCIDENT_FRACTION
    rare = np.triu(met.sum(axis=0) <= max(1.0, COINCIDENT_RARITY * len(points)), 1)
    candidates = met & rare
    return {int(row): tuple(int(v) for v in np.unravel_index(np.where(candidates[row], gaps[row], np.inf).argmin(),
                                                             rare.shape))
            for row in np.flatnonzero(candidates.any(axis=(1, 2)))}


def landmark_order_that_fits(points: np.ndarray, mean: np.ndarray, max_iter: int = 10) -> np.ndarray:
    """The numbering of a specimen's landmarks that best matches the mean shape: align, match every
    landmark to its nearest mean landmark one-to-one (Hungarian assignment), repeat until stable.
    Returns ``order`` with ``points[order]`` renumbered; the identity when the numbering already fits."""
    from scipy.optimize import linear_sum_assignment

    order = np.arange(len(points))
    for _ in range(max_iter):
        aligned = rotate_onto(normalise(points[order]), mean)
        rows, cols = linear_sum_assignment(np.linalg.norm(aligned[:, None] - mean[None], axis=-1))
        new_order = np.empty_like(order)
        new_order[cols] = order[rows]
        if (new_order == order).all():
            break
        order = new_order
    return order


def _plausible_mistake(order: np.ndarray, mirrored: bool) -> bool:
    """A renumbering a person makes: one swap, or left/right pairs exchanged throughout (the configuration is
    then a mirror image). Any other reshuffle that fits better is a distorted shape (e.g. a face in profile)."""
    moved = np.flatnonzero(order != np.arange(len(order)))
    pairs_only = bool((order[order] == np.arange(len(order))).all())
    return len(moved) == 2 or (pairs_only and mirrored)


def _order_message(order: np.ndarray, before: float, after: float) -> tuple[tuple[int, ...], str]:
    moved = tuple(int(k) + 1 for k in np.flatnonzero(order != np.arange(len(order))))
    gain = f"(Procrustes distance {before:.3f} -> {after:.3f})"
    if len(moved) == 2:
        return moved, f"landmarks {moved[0]} and {moved[1]} look swapped {gain}"
    pairs = ", ".join(f"{k}<->{order[k - 1] + 1}" for k in moved if k < order[k - 1] + 1)
    return moved, f"landmarks look numbered mirror-wise (left/right reversed): renumber {pairs} {gain}"


def check_landmarks(data: LandmarkSet, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Check every complete specimen of a landmark dataset; a summary with one SpecimenCheck per specimen."""
    report = check_configurations(np.stack([r.points for r in data.records]).astype(float),
                                  [r.image_path.name for r in data.records], threshold, str(data.annotation_file))
    return {"annotation_file": str(data.annotation_file), **report}


def check_configurations(all_points: np.ndarray, names: list[str], threshold: float = DEFAULT_THRESHOLD,
                         source: str = "landmarks") -> dict:
    """Check (M, N, 2) landmark configurations (NaN = missing; incomplete ones are not checked)."""
    if threshold <= 0:
        raise ShapekitError(f"--threshold {threshold}: must be positive (3.5 is the usual cut-off)")
    keep, points = _complete(all_points, source)
    aligned, mean = gpa(points)
    distances = np.sqrt(((aligned - mean) ** 2).sum(axis=(1, 2)))
    shape_z = robust_z(distances)
    median = np.median(distances)
    expected = expected_positions(points, mean)
    sizes = centroid_size(points)
    offsets = np.linalg.norm(points - expected, axis=-1)
    landmark_z = robust_z(offsets / sizes[:, None])
    double_clicks = _double_clicks(points, sizes)

    checks = []
    for row, index in enumerate(keep):
        worst = int(np.argmax(landmark_z[row]))
        check = SpecimenCheck(index, names[index], float(distances[row]), float(shape_z[row]),
                              worst + 1, float(landmark_z[row, worst]), float(offsets[row, worst]),
                              (float(expected[row, worst, 0]), float(expected[row, worst, 1])))
        pair = double_clicks.get(row)
        # A double click also leaves one of the two points far from where the others put it.
        if pair is not None and landmark_z[row, list(pair)].max() > threshold:
            i, j = pair
            gap = float(np.linalg.norm(points[row, i] - points[row, j]))
            usual = float(np.median(np.linalg.norm(aligned[:, i] - aligned[:, j], axis=-1)) * sizes[row])
            _explain(check, "coincident", (i + 1, j + 1),
                     f"landmarks {i + 1} and {j + 1} coincide ({gap:.1f} px apart, usually about {usual:.0f} px)")
        elif shape_z[row] > threshold:
            _explain_outlier(check, points[row], mean, threshold)
        checks.append(check)
    checks.sort(key=lambda c: (not c.issue, -c.shape_z))
    flagged = [c for c in checks if c.issue]
    return {
        "n_images": len(all_points), "n_checked": len(keep), "n_incomplete": len(all_points) - len(keep),
        "n_landmarks": all_points.shape[1], "threshold": threshold,
        "median_procrustes_distance": float(median), "n_flagged": len(flagged),
        "issues": {kind: sum(c.issue == kind for c in flagged) for kind in ("coincident", "order", "landmark", "shape")},
        "checks": checks,
    }


def _explain(check: SpecimenCheck, issue: str, landmarks: tuple[int, ...], message: str) -> None:
    check.issue, check.landmarks, check.message = issue, landmarks, message


def _explain_outlier(check: SpecimenCheck, points: np.ndarray, mean: np.ndarray, threshold: float) -> None:
    order = landmark_order_that_fits(points, mean)
    renumbered = procrustes_distance(mean, points[order])
    mirrored = procrustes_distance(mean, points, allow_reflection=True) <= ORDER_GAIN * check.procrustes_distance
    if renumbered <= ORDER_GAIN * check.procrustes_distance and _plausible_mistake(order, mirrored):
        check.landmarks, check.message = _order_message(order, check.procrustes_distance, renumbered)
        check.issue, check.renumbering = "order", tuple(int(k) + 1 for k in order)
    elif check.worst_landmark_z > threshold:
        x, y = check.expected_xy
        _explain(check, "landmark", (check.worst_landmark,),
                 f"landmark {check.worst_landmark} lies {check.worst_offset_px:.0f} px from where the other "
                 f"landmarks put it in a typical shape (about x={x:.0f}, y={y:.0f}): misplaced, or an unusual "
                 f"specimen")
    else:
        _explain(check, "shape", (),
                 f"unusual shape overall (Procrustes distance {check.procrustes_distance:.3f}, z={check.shape_z:.1f}); "
                 f"no single landmark explains it: check posture, damage or specimen type")


def flagged_images(data_folder: str | Path, threshold: float = DEFAULT_THRESHOLD) -> set[str]:
    """Image names `shapekit check` flags in a dataset folder (for benchmarks and scripts)."""
    report = check_landmarks(load_landmark_set(data_folder), threshold)
    return {c.image for c in report["checks"] if c.issue}


def run_check(data_folder: str | Path, out: str | Path, threshold: float = DEFAULT_THRESHOLD,
              clean_out: str | Path | None = None, renumber: bool = True, drop: bool = True,
              y_origin: str = "bottom", max_plotted: int = 12) -> dict:
    """`shapekit check`: report (JSON, CSV, overlay figure) and optionally a cleaned copy of the dataset:
    images whose numbering is off renumbered (``renumber``), the other flagged images left out (``drop``)."""
    data = load_landmark_set(data_folder, y_origin=y_origin)
    report = check_landmarks(data, threshold)
    out = Path(out)
    flagged = [c for c in report["checks"] if c.issue]
    _write_csv(out / "label_check.csv", report["checks"])
    if flagged:
        report["figure"] = str(_plot_flagged(data, flagged[:max_plotted], out / "label_check.png"))
    if clean_out is not None:
        report.update(_write_clean(data_folder, Path(clean_out), len(data), flagged, renumber, drop))
    report["checks"] = [asdict(c) for c in report["checks"]]
    write_json(out / "label_check.json", report)
    return report


def _write_clean(data_folder, clean_out: Path, count: int, flagged: list[SpecimenCheck], renumber: bool,
                 drop: bool) -> dict:
    orders = {c.index: np.asarray(c.renumbering) - 1 for c in flagged if renumber and c.issue == "order"}
    dropped = {c.index for c in flagged} - set(orders) if drop else set()
    kept = [k for k in range(count) if k not in dropped]
    target = write_subsets(data_folder, clean_out.parent, {clean_out.name: kept}, orders)[clean_out.name]
    return {"clean_dataset": str(target), "n_dropped": len(dropped), "n_renumbered": len(orders)}


def _write_csv(path: Path, checks: list[SpecimenCheck]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "issue", "landmarks", "procrustes_distance", "shape_z", "worst_landmark",
                     "worst_landmark_z", "worst_offset_px", "expected_x", "expected_y", "message"])
    for c in checks:
        writer.writerow([c.image, c.issue, " ".join(map(str, c.landmarks)), f"{c.procrustes_distance:.5f}",
                         f"{c.shape_z:.2f}", c.worst_landmark, f"{c.worst_landmark_z:.2f}", f"{c.worst_offset_px:.1f}",
                         f"{c.expected_xy[0]:.1f}", f"{c.expected_xy[1]:.1f}", c.message])
    write_text(path, buffer.getvalue())


def _plot_flagged(data: LandmarkSet, flagged: list[SpecimenCheck], path: Path) -> Path:
    """Flagged images with their labels (red, numbered); green marks where the other landmarks put the
    landmark in question."""
    from .io.images import read_image
    from .plots import plot_overlay_grid

    images, labels, expected, titles = [], [], [], []
    for c in flagged:
        record = data.records[c.index]
        images.append(read_image(record.image_path))
        labels.append(record.points)
        where = np.full_like(record.points, np.nan)
        if c.issue == "landmark":
            where[c.worst_landmark - 1] = c.expected_xy
        expected.append(where)
        titles.append(f"{c.image} ({c.issue}: {' '.join(map(str, c.landmarks)) or 'whole shape'})")
    return plot_overlay_grid(images, labels, expected, titles, path,
                             suptitle="Flagged labels (red: as annotated; green: where the other landmarks put it)")
