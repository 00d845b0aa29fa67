"""A landmark dataset with four typical labelling mistakes, for the label check's tests (CLI and web app)."""

from pathlib import Path

import numpy as np
from PIL import Image

from shapekit.io.landmark_dataset import write_landmarks

# A bilateral outline: base (1, 2), two side pairs (3-4, 5-6), apex (7), centre (8).
MEAN_SHAPE = np.array([[-20, 60], [20, 60], [-35, 10], [35, 10], [-25, -40], [25, -40], [0, -75], [0, 5]], float)
MIRROR_ORDER = np.array([1, 0, 3, 2, 5, 4, 6, 7])
WIDTH, HEIGHT = 240, 240
SWAPPED, MIRRORED, MISPLACED, DOUBLED = 3, 7, 11, 15


def true_shapes(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(count):
        angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.8, 1.2)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = (MEAN_SHAPE + rng.normal(0, 2.0, MEAN_SHAPE.shape)) @ rotation.T * scale
        shapes.append(points + [WIDTH / 2 + rng.uniform(-10, 10), HEIGHT / 2 + rng.uniform(-10, 10)])
    return np.stack(shapes)


def labelled(truth: np.ndarray) -> np.ndarray:
    """The true shapes with four typical labelling mistakes."""
    labels = truth.copy()
    labels[SWAPPED, [1, 4]] = labels[SWAPPED, [4, 1]]
    labels[MIRRORED] = labels[MIRRORED, MIRROR_ORDER]
    labels[MISPLACED, 3] += [-45, 35]
    labels[DOUBLED, 6] = labels[DOUBLED, 5]
    return labels


ANNOTATION_FILES = {"tps": "landmarks.tps", "csv": "landmarks.csv", "coco": "annotations.json"}


def write_mislabelled_dataset(folder: Path, fmt: str = "tps", count: int = 40) -> tuple[str, np.ndarray]:
    """40 plain images whose labels carry the four mistakes; returns (annotation file name, true points)."""
    truth = true_shapes(count)
    names = [f"s{k:02d}.png" for k in range(len(truth))]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (WIDTH, HEIGHT), (90, 120, 150)).save(folder / "images" / name)
    write_landmarks(folder / ANNOTATION_FILES[fmt], fmt, names, labelled(truth),
                    ["base_left", "base_right", "mid_left", "mid_right", "low_left", "low_right", "apex", "centre"],
                    [HEIGHT] * len(names), [WIDTH] * len(names))
    return ANNOTATION_FILES[fmt], truth
