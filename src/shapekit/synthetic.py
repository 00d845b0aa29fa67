"""Procedural landmark datasets: "specimens" drawn from a random shape model, with known landmarks.

Used by the demo and the tests, so both run anywhere without downloading data. Each specimen is a
wing-like polygon (its vertices are landmarks) with three veins meeting at an interior junction
(the last landmark), on a textured background, under random pose, size, colour and lighting.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .io import tps
from .io.atomic import save_image

NUM_VERTICES = 6
LANDMARK_NAMES = [f"vertex{k + 1}" for k in range(NUM_VERTICES)] + ["junction"]


def _specimen(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one image; returns (image, landmarks (N, 2) in top-left pixel coordinates, object mask)."""
    base = np.array([rng.uniform(60, 200), rng.uniform(60, 200), rng.uniform(60, 200)])
    noise = rng.normal(0, rng.uniform(4, 14), size=(height // 4 + 1, width // 4 + 1, 3))
    background = np.clip(base + cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255)
    gradient = np.linspace(rng.uniform(-30, 0), rng.uniform(0, 30), width)[None, :, None]
    image = np.clip(background + gradient, 0, 255).astype(np.uint8)

    radius = min(width, height) * rng.uniform(0.28, 0.4)
    centre = np.array([width / 2 + rng.uniform(-0.1, 0.1) * width, height / 2 + rng.uniform(-0.1, 0.1) * height])
    rotation = rng.uniform(-0.45, 0.45)
    angles = rotation + np.arange(NUM_VERTICES) * 2 * math.pi / NUM_VERTICES + rng.uniform(-0.2, 0.2, NUM_VERTICES)
    radii = radius * rng.uniform(0.65, 1.0, NUM_VERTICES) * np.where(np.arange(NUM_VERTICES) % 3 == 0, 1.15, 1.0)
    aspect = rng.uniform(0.75, 1.0)
    vertices = centre + np.stack([np.cos(angles) * radii, np.sin(angles) * radii * aspect], axis=1)
    junction = centre + rng.uniform(-0.15, 0.15, 2) * radius

    fill = np.clip(255 - base + rng.uniform(-40, 40, 3), 20, 235)
    shift = 4  # sub-pixel drawing precision for OpenCV
    polygon = np.round(vertices * (1 << shift)).astype(np.int32)
    cv2.fillPoly(image, [polygon], tuple(float(c) for c in fill), cv2.LINE_AA, shift)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [polygon], 1, cv2.LINE_8, shift)
    edge = tuple(float(c) for c in fill * 0.45)
    cv2.polylines(image, [polygon], True, edge, 2, cv2.LINE_AA, shift)
    for k in (0, 2, 4):
        start = np.round(junction * (1 << shift)).astype(np.int32)
        end = polygon[k]
        cv2.line(image, tuple(int(v) for v in start), tuple(int(v) for v in end), edge, 1, cv2.LINE_AA, shift)
    image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.1, 0.9))
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    # OpenCV's sub-pixel drawing puts pixel centres at integers, as shapekit does.
    return image, np.vstack([vertices, junction[None]]), mask


def make_landmark_dataset(out: str | Path, n_images: int = 120, width: int = 160, height: int = 128,
                          seed: int = 0) -> Path:
    """Write ``out/images/*.png`` and ``out/landmarks.tps`` (tpsDig convention: y from the bottom)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    specimens = []
    for k in range(n_images):
        image, points, _ = _specimen(rng, width, height)
        name = f"specimen_{k:04d}.png"
        save_image(out / "images" / name, image)
        specimens.append(tps.TpsSpecimen(tps.from_top_origin(points, height), image=name, id=str(k)))
    tps.write_tps(out / "landmarks.tps", specimens)
    return out


def make_mask_dataset(out: str | Path, n_images: int = 60, width: int = 128, height: int = 96, seed: int = 0,
                      multiclass: bool = False) -> Path:
    """Write ``out/images`` and ``out/masks`` (0/255), or with ``multiclass`` ``out/labels`` + classes.txt, where
    the specimen's left and right halves are classes 1 and 2."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for k in range(n_images):
        image, points, mask = _specimen(rng, width, height)
        name = f"specimen_{k:04d}"
        save_image(out / "images" / f"{name}.jpg", image)
        if multiclass:
            labels = mask.copy()
            centre_x = int(round(points[-1, 0]))
            labels[:, centre_x:] *= 2
            save_image(out / "labels" / f"{name}.png", labels)
        else:
            save_image(out / "masks" / f"{name}.png", mask * 255)
    if multiclass:
        (out / "classes.txt").write_text("0 background\n1 left\n2 right\n")
    return out
