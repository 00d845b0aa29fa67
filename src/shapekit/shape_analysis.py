"""`shapekit shape-analysis`: Procrustes alignment, centroid size and shape PCA of TPS files, and the
comparison of manual with predicted landmarks (do they lead to the same biology?)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .errors import ShapekitError
from .io.atomic import save_figure, write_json, write_text
from .io.tps import TpsSpecimen, read_tps
from .morphometrics import centroid_size, gpa, procrustes_distance, shape_pca


def _configurations(specimens: list[TpsSpecimen], path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    counts = {len(s.points) for s in specimens}
    if len(counts) != 1:
        raise ShapekitError(f"{path}: specimens have different landmark counts {sorted(counts)}")
    points = np.stack([s.points for s in specimens])
    scales = np.array([s.scale if s.scale else 1.0 for s in specimens])
    names = [s.image or s.id or str(k + 1) for k, s in enumerate(specimens)]
    return points, scales, names


def analyse(tps_path: Path, out: Path, compare: Path | None = None, labels: tuple[str, str] = ("manual", "predicted")
            ) -> dict:
    tps_path, out = Path(tps_path), Path(out)
    first = read_tps(tps_path)
    points, scales, names = _configurations(first, tps_path)
    groups = np.zeros(len(points), int)
    physical = any(s.scale for s in first)
    if compare is not None:
        second = read_tps(compare)
        other, other_scales, other_names = _configurations(second, Path(compare))
        if other.shape[1:] != points.shape[1:]:
            raise ShapekitError(f"{compare}: {other.shape[1]} landmarks per specimen, {tps_path.name} has {points.shape[1]}")
        points = np.concatenate([points, other])
        scales = np.concatenate([scales, other_scales])
        names = names + other_names
        groups = np.concatenate([groups, np.ones(len(other), int)])
        physical = physical or any(s.scale for s in second)
    aligned, mean = gpa(points)
    sizes = centroid_size(points) * scales
    pca = shape_pca(aligned, mean)
    report: dict = {
        "files": [str(tps_path)] + ([str(compare)] if compare else []),
        "n_specimens": int(len(points)), "n_landmarks": int(points.shape[1]),
        "centroid_size_units": "SCALE units" if physical else "pixels",
        "explained_variance": [float(v) for v in pca["explained"][:10]],
        "centroid_size": {"mean": float(sizes.mean()), "sd": float(sizes.std(ddof=1))},
    }
    if compare is not None:
        a, b = groups == 0, groups == 1
        mean_a, mean_b = aligned[a].mean(0), aligned[b].mean(0)
        report["groups"] = {labels[0]: int(a.sum()), labels[1]: int(b.sum())}
        report["procrustes_distance_between_means"] = procrustes_distance(mean_a, mean_b)
        within = [procrustes_distance(s, mean_a) for s in aligned[a]]
        report["median_procrustes_distance_to_mean_within_first"] = float(np.median(within))
        report["centroid_size_by_group"] = {labels[0]: float(sizes[a].mean()), labels[1]: float(sizes[b].mean())}
        paired = _pairs(names, groups)
        if paired:
            i, j = np.array(paired).T
            report["paired_specimens"] = len(paired)
            report["paired_procrustes_distance_median"] = float(np.median(
                [procrustes_distance(points[x], points[y]) for x, y in paired]))
            report["paired_pc1_correlation"] = float(np.corrcoef(pca["scores"][i, 0], pca["scores"][j, 0])[0, 1])
            if pca["scores"].shape[1] > 1:
                report["paired_pc2_correlation"] = float(np.corrcoef(pca["scores"][i, 1], pca["scores"][j, 1])[0, 1])
            report["paired_centroid_size_correlation"] = float(np.corrcoef(sizes[i], sizes[j])[0, 1])
    _write_scores(out / "shape_scores.csv", names, groups, sizes, pca["scores"], labels)
    _plot(aligned, mean, pca, groups, labels if compare else (tps_path.stem,), out / "shape_analysis.png")
    write_json(out / "shape_analysis.json", report)
    return report


def _pairs(names: list[str], groups: np.ndarray) -> list[tuple[int, int]]:
    """Specimens present in both groups, matched by image name (else by order when the counts agree)."""
    first = {n: k for k, n in enumerate(names) if groups[k] == 0}
    pairs = [(first[n], k) for k, n in enumerate(names) if groups[k] == 1 and n in first]
    if not pairs and (groups == 0).sum() == (groups == 1).sum():
        pairs = list(zip(np.flatnonzero(groups == 0), np.flatnonzero(groups == 1)))
    return [(int(a), int(b)) for a, b in pairs]


def _write_scores(path: Path, names, groups, sizes, scores, labels) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    count = min(scores.shape[1], 10)
    writer.writerow(["specimen", "group", "centroid_size"] + [f"PC{k + 1}" for k in range(count)])
    for name, group, size, row in zip(names, groups, sizes, scores):
        writer.writerow([name, labels[group] if group < len(labels) else group, f"{size:.6g}"]
                        + [f"{v:.6g}" for v in row[:count]])
    write_text(path, buffer.getvalue())


def _plot(aligned, mean, pca, groups, labels, path: Path) -> None:
    import matplotlib.pyplot as plt

    colours = ["tab:blue", "tab:orange"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    ax = axes[0]
    for g in np.unique(groups):
        pts = aligned[groups == g].reshape(-1, aligned.shape[-1])
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.35, color=colours[g % 2], label=labels[g] if g < len(labels) else g)
    ax.plot(*mean[:, :2].T, "k.", ms=8)
    for k, p in enumerate(mean):
        ax.annotate(str(k + 1), p[:2], fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_aspect("equal")
    ax.set_title("Procrustes-aligned landmarks (black: mean shape)")
    ax.legend(markerscale=3)
    ax = axes[1]
    scores = pca["scores"]
    second = scores[:, 1] if scores.shape[1] > 1 else np.zeros(len(scores))
    for g in np.unique(groups):
        chosen = groups == g
        ax.scatter(scores[chosen, 0], second[chosen], s=14, alpha=0.7, color=colours[g % 2],
                   label=labels[g] if g < len(labels) else g)
    explained = pca["explained"]
    ax.set_xlabel(f"PC1 ({explained[0] * 100:.1f} %)")
    ax.set_ylabel(f"PC2 ({explained[1] * 100:.1f} %)" if len(explained) > 1 else "PC2")
    ax.set_title("Shape space")
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, path)
