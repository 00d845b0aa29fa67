"""Geometric morphometrics on landmark configurations: generalised Procrustes analysis (GPA),
centroid size, and PCA of shape.

Hand-written because Python lacks a maintained GPA: scipy.spatial.procrustes aligns one pair of
configurations only, and the R packages (geomorph, Morpho) are not available to a Python tool.
"""

from __future__ import annotations

import numpy as np

from .errors import ShapekitError


def centroid_size(points: np.ndarray) -> np.ndarray:
    """Square root of summed squared distances to the centroid, for (N, D) or (M, N, D) configurations."""
    points = np.asarray(points, float)
    centred = points - points.mean(axis=-2, keepdims=True)
    return np.sqrt((centred ** 2).sum(axis=(-2, -1)))


def normalise(shape: np.ndarray) -> np.ndarray:
    centred = shape - shape.mean(0)
    return centred / np.sqrt((centred ** 2).sum())


def rotate_onto(shape: np.ndarray, target: np.ndarray, allow_reflection: bool = False) -> np.ndarray:
    """Rotate a centred configuration to best fit a centred target (orthogonal Procrustes, least squares)."""
    u, _, vt = np.linalg.svd(shape.T @ target)
    if not allow_reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
    return shape @ (u @ vt)


def gpa(shapes: np.ndarray, tol: float = 1e-10, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis of (M, N, D) configurations.

    Every configuration is centred, scaled to unit centroid size and rotated onto the mean until the
    mean stops changing. Returns (aligned configurations, mean shape)."""
    shapes = np.asarray(shapes, float)
    if shapes.ndim != 3 or len(shapes) < 2:
        raise ShapekitError("Procrustes analysis needs at least two configurations of the same landmarks")
    if np.isnan(shapes).any():
        bad = int(np.isnan(shapes).any(axis=(1, 2)).argmax())
        raise ShapekitError(f"specimen {bad + 1} has missing landmarks; Procrustes analysis needs complete sets")
    aligned = np.stack([normalise(s) for s in shapes])
    mean = aligned[0]
    for _ in range(max_iter):
        aligned = np.stack([rotate_onto(s, mean) for s in aligned])
        new_mean = normalise(aligned.mean(0))
        new_mean = rotate_onto(new_mean, mean)  # keep the reference orientation stable
        change = np.sqrt(((new_mean - mean) ** 2).sum())
        mean = new_mean
        if change < tol:
            break
    aligned = np.stack([rotate_onto(s, mean) for s in aligned])
    return aligned, mean


def procrustes_distance(a: np.ndarray, b: np.ndarray, allow_reflection: bool = False) -> float:
    """Partial Procrustes distance between two configurations (unit centroid size, best rotation; with
    ``allow_reflection`` also the best mirror image)."""
    a, b = normalise(np.asarray(a, float)), normalise(np.asarray(b, float))
    return float(np.sqrt(((rotate_onto(b, a, allow_reflection) - a) ** 2).sum()))


def shape_pca(aligned: np.ndarray, mean: np.ndarray) -> dict[str, np.ndarray]:
    """PCA of Procrustes residuals (tangent-space approximation): scores, loadings, explained variance."""
    residuals = (aligned - mean).reshape(len(aligned), -1)
    _, singular, vt = np.linalg.svd(residuals - residuals.mean(0), full_matrices=False)
    variance = singular ** 2 / max(1, len(aligned) - 1)
    total = variance.sum()
    keep = max(1, min(len(aligned) - 1, residuals.shape[1] - 4))  # shape space has 2N - 4 dimensions in 2D
    return {"scores": (residuals - residuals.mean(0)) @ vt[:keep].T, "loadings": vt[:keep],
            "variance": variance[:keep], "explained": variance[:keep] / total if total > 0 else variance[:keep]}
