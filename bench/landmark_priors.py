"""Where the landmark error of the 20-minute benchmark models lies, and whether a shape prior removes it.

For a dataset's refined model (trained by bench/landmarks.py, same split), on its held-out images:
1. each landmark's error split into the component along the outline (the direction between its neighbours in
   landmark order) and across it: sliding outline landmarks err along the outline;
2. a robust point-distribution-model fit (GPA + PCA of the training shapes, k modes, similarity pose, iteratively
   reweighted by residual, coefficients clamped to 3 sd): points far from the fitted model are replaced by it;
3. a chord-position prior: each landmark's relative position along the chord of the two other landmarks that
   locate it best in the training shapes, against the network's own position along that chord.

    python bench/landmark_priors.py --dataset mollusc-shells

Writes bench/results/landmark_priors-<dataset>.json and prints tables.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, print_table, save_results  # noqa: E402

from shapekit.engine import Runtime, load_model  # noqa: E402
from shapekit.io import load_landmark_set, read_image  # noqa: E402
from shapekit.morphometrics import gpa  # noqa: E402


def along_across(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean |error| (N,) along and across the direction from landmark i-1 to i+1 of the true shape."""
    count = true.shape[1]
    along, across = np.zeros(count), np.zeros(count)
    for i in range(count):
        tangent = true[:, (i + 1) % count] - true[:, (i - 1) % count]
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        error = pred[:, i] - true[:, i]
        along[i] = np.abs((error * tangent).sum(1)).mean()
        across[i] = np.abs(error[:, 0] * -tangent[:, 1] + error[:, 1] * tangent[:, 0]).mean()
    return along, across


class PointDistributionModel:
    """Mean shape and principal modes of GPA-aligned training shapes (Cootes' active shape model)."""

    def __init__(self, shapes: np.ndarray):
        aligned, self.mean = gpa(shapes)
        centred = aligned.reshape(len(shapes), -1) - self.mean.reshape(-1)
        _, singular, self.modes = np.linalg.svd(centred, full_matrices=False)
        self.variances = singular ** 2 / (len(shapes) - 1)

    def fit(self, points: np.ndarray, weights: np.ndarray, modes: int, iterations: int = 10):
        """Model points (N, 2) in image pixels closest to ``points`` under a robust weighted fit, their
        residuals (N,) and the residuals' robust spread."""
        basis, limit = self.modes[:modes].T, 3 * np.sqrt(self.variances[:modes])
        base = np.clip(weights, 0.05, None)
        weights, coefficients = base.copy(), np.zeros(modes)
        for _ in range(iterations):
            shape = (self.mean.reshape(-1) + basis @ coefficients).reshape(-1, 2)
            matrix, offset = weighted_similarity(shape, points, weights)
            local = ((points - offset) @ np.linalg.inv(matrix).T).reshape(-1) - self.mean.reshape(-1)
            w = np.repeat(weights, 2)
            coefficients = np.linalg.solve(basis.T @ (w[:, None] * basis) + 1e-9 * np.eye(modes), basis.T @ (w * local))
            coefficients = np.clip(coefficients, -limit, limit)
            shape = (self.mean.reshape(-1) + basis @ coefficients).reshape(-1, 2)
            model_points = shape @ matrix.T + offset
            residual = np.linalg.norm(model_points - points, axis=1)
            spread = 1.4826 * np.median(residual) + 1e-6
            weights = base / (1 + (residual / (2 * spread)) ** 2)
        return model_points, residual, spread


def weighted_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray):
    """(2 x 2 scaled rotation, offset) minimising sum w |M source + t - target|^2 (closed form)."""
    w = weights / weights.sum()
    source_mean, target_mean = w @ source, w @ target
    a, b = source - source_mean, target - target_mean
    norm = w @ (a * a).sum(1)
    cos = w @ (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1]) / norm
    sin = w @ (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]) / norm
    matrix = np.array([[cos, -sin], [sin, cos]])
    return matrix, target_mean - source_mean @ matrix.T


def chord_prior(train: np.ndarray, pred: np.ndarray, true: np.ndarray) -> list[dict]:
    rows = []
    count = train.shape[1]

    def position(shapes, i, j, k):
        chord = shapes[:, k] - shapes[:, j]
        return ((shapes[:, i] - shapes[:, j]) * chord).sum(1) / (chord * chord).sum(1), np.linalg.norm(chord, axis=1)

    for i in range(count):
        best = None
        for j, k in itertools.permutations([m for m in range(count) if m != i], 2):
            s, length = position(train, i, j, k)
            spread = float(s.std() * length.mean())
            if best is None or spread < best[0]:
                best = (spread, j, k, float(s.mean()))
        spread, j, k, mean = best
        s_pred, _ = position(pred, i, j, k)
        s_true, length = position(true, i, j, k)
        rows.append({"landmark": i + 1, "chord": [j + 1, k + 1], "train_sd_px": spread,
                     "network_along_chord_px": float((np.abs(s_pred - s_true) * length).mean()),
                     "prior_along_chord_px": float((np.abs(mean - s_true) * length).mean())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mollusc-shells")
    parser.add_argument("--run", default="run_256_refined", help="run folder under bench/work/landmarks/<dataset>")
    args = parser.parse_args()
    root = WORK / "landmarks" / args.dataset
    checkpoint = root / args.run / "best.ckpt"
    if not checkpoint.is_file():
        sys.exit(f"{checkpoint}: missing; train it first with python bench/landmarks.py --datasets {args.dataset} "
                 "--minutes 20")
    task, model = load_model(checkpoint)
    train, test = load_landmark_set(root / "split" / "train"), load_landmark_set(root / "split" / "test")
    images = [read_image(r.image_path) for r in test.records]
    pred, confidence = task.infer_images(model, images, Runtime.create("cpu", "32"))
    true = np.stack([r.points for r in test.records])
    long_sides = np.array([r.long_side for r in test.records], float)
    train_shapes = np.stack([r.points for r in train.records])

    def pct(points):
        return float((np.linalg.norm(points - true, axis=-1) / long_sides[:, None]).mean() * 100)

    along, across = along_across(pred, true)
    total = np.linalg.norm(pred - true, axis=-1).mean(0)
    print_table(f"{args.dataset}: held-out error per landmark (px)", ["landmark", "total", "along outline", "across"],
                [[i + 1, total[i], along[i], across[i]] for i in range(len(total))])

    pdm = PointDistributionModel(train_shapes)
    fits = []
    for modes in (4, 6, 8, 10, 14):
        for threshold in (2.0, 3.0, 4.0):
            corrected = pred.copy()
            for n in range(len(pred)):
                model_points, residual, spread = pdm.fit(pred[n], confidence[n], modes)
                far = residual > threshold * max(spread, 1e-3 * long_sides[n])
                corrected[n, far] = model_points[far]
            fits.append({"modes": modes, "threshold": threshold, "mean_pct_long_side": pct(corrected)})
    print_table("point-distribution-model correction", ["modes", "outlier threshold (x robust sd)", "mean %"],
                [[f["modes"], f["threshold"], f["mean_pct_long_side"]] for f in fits] + [["none", "", pct(pred)]])
    chords = chord_prior(train_shapes, pred, true)
    print_table("chord-position prior vs the network, error along the chord (px)",
                ["landmark", "chord", "train sd", "network", "prior"],
                [[c["landmark"], "%d-%d" % tuple(c["chord"]), c["train_sd_px"], c["network_along_chord_px"],
                  c["prior_along_chord_px"]] for c in chords])
    save_results(f"landmark_priors-{args.dataset}", {
        "settings": vars(args), "network_mean_pct_long_side": pct(pred),
        "per_landmark_px": {"total": total.tolist(), "along_outline": along.tolist(), "across_outline": across.tolist()},
        "pdm_correction": fits, "chord_prior": chords})


if __name__ == "__main__":
    main()
