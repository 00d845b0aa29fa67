"""Geometric preprocessing and keypoint-aware augmentation.

Letterboxing keeps the aspect ratio (no distortion of shape, which morphometrics cares about) and
records how to map predictions back to the original pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch
from pydantic import BaseModel, Field


@dataclass(frozen=True)
class Letterbox:
    """Optionally turn a quarter (counter-clockwise), resize by (sx, sy), then pad by (pad_x, pad_y) into a
    (width, height) canvas. ``src_width`` is the width before the turn (needed to map points back)."""

    sx: float
    sy: float
    pad_x: int
    pad_y: int
    width: int
    height: int
    turned: bool = False
    src_width: int = 0

    @classmethod
    def fit(cls, src_width: int, src_height: int, width: int, height: int | None = None,
            turn_to_fit: bool = False) -> "Letterbox":
        """``turn_to_fit``: turn a portrait image into a landscape canvas (or the reverse) by 90 degrees first,
        so elongated specimens photographed either way fill a non-square input instead of a third of it."""
        height = width if height is None else height
        turned = turn_to_fit and (src_width - src_height) * (width - height) < 0
        fit_w, fit_h = (src_height, src_width) if turned else (src_width, src_height)
        scale = min(width / fit_w, height / fit_h)
        new_w = max(1, min(width, round(fit_w * scale)))
        new_h = max(1, min(height, round(fit_h * scale)))
        return cls(new_w / fit_w, new_h / fit_h, (width - new_w) // 2, (height - new_h) // 2, width, height,
                   turned, src_width)

    def apply_image(self, image: np.ndarray, fill: int = 0, interpolation: int | None = None) -> np.ndarray:
        """Turn, resize and pad an image (or, with cv2.INTER_NEAREST, a label map)."""
        if self.turned:
            image = np.ascontiguousarray(np.rot90(image))
        src_h, src_w = image.shape[:2]
        new_w, new_h = round(src_w * self.sx), round(src_h * self.sy)
        if interpolation is None:
            interpolation = cv2.INTER_AREA if new_w < src_w or new_h < src_h else cv2.INTER_LINEAR
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        canvas = np.full((self.height, self.width) + image.shape[2:], fill, dtype=image.dtype)
        canvas[self.pad_y:self.pad_y + new_h, self.pad_x:self.pad_x + new_w] = resized
        return canvas

    def apply_points(self, points: np.ndarray) -> np.ndarray:
        out = np.array(points, dtype=np.float64, copy=True)
        if self.turned:  # np.rot90 sends pixel (x, y) to (y, W - 1 - x)
            out = np.stack([out[..., 1], self.src_width - 1 - out[..., 0]], -1)
        out[..., 0] = (out[..., 0] + 0.5) * self.sx - 0.5 + self.pad_x
        out[..., 1] = (out[..., 1] + 0.5) * self.sy - 0.5 + self.pad_y
        return out

    def invert_points(self, points: np.ndarray) -> np.ndarray:
        return invert_letterbox_points(np.asarray(points, dtype=np.float64)[None], self.as_array()[None])[0]

    def as_array(self) -> np.ndarray:
        """(sx, sy, pad_x, pad_y, turned, src_width): the row :func:`invert_letterbox_points` reads."""
        return np.array([self.sx, self.sy, self.pad_x, self.pad_y, float(self.turned), self.src_width],
                        dtype=np.float64)


def invert_letterbox_points(points, params):
    """Batched inverse for numpy arrays or torch tensors: points (B, N, 2), params (B, 4 or 6) = sx, sy, pad_x,
    pad_y[, turned, src_width]."""
    sx, sy, pad_x, pad_y = (params[:, k, None] for k in range(4))
    x = (points[..., 0] - pad_x + 0.5) / sx - 0.5
    y = (points[..., 1] - pad_y + 0.5) / sy - 0.5
    if params.shape[1] >= 6:  # undo the quarter turn: (x', y') came from (W - 1 - y', x')
        turned = params[:, 4, None] > 0.5
        where = np.where if isinstance(points, np.ndarray) else torch.where
        x, y = where(turned, params[:, 5, None] - 1 - y, x), where(turned, x, y)
    stack = np.stack if isinstance(points, np.ndarray) else torch.stack
    return stack([x, y], -1)


class AugmentOptions(BaseModel):
    """Training-time augmentation (keypoints follow every geometric change)."""

    enabled: bool = True
    rotate: float = Field(15.0, description="max rotation, degrees")
    scale: float = Field(0.15, description="max relative zoom in or out")
    shift: float = Field(0.06, description="max shift, fraction of the input size")
    shear: float = Field(5.0, description="max shear, degrees")
    color: float = Field(0.25, description="brightness/contrast jitter strength")
    hflip: bool = Field(True, description="horizontal flips; only used when left/right swap pairs are declared")


class SeededPipeline:
    """An albumentations pipeline whose random draws follow the run's seed.

    Albumentations 2 gives every Compose its own generator, seeded from the OS unless told otherwise, so
    Lightning's seed_everything does not reach it and two runs with the same --seed augment differently.
    The pipeline is reseeded from numpy's global generator at its first use in each process: seed_everything
    seeds that generator in the main process and per data-loader worker, so runs repeat and workers differ."""

    def __init__(self, pipeline: A.Compose):
        self.pipeline = pipeline
        self._seeded_in: int | None = None

    def __call__(self, **data):
        if self._seeded_in != os.getpid():
            self.set_random_seed(int(np.random.randint(0, 2 ** 31 - 1)))
        return self.pipeline(**data)

    def set_random_seed(self, seed: int) -> None:
        """Seed explicitly (this process keeps the seed)."""
        self.pipeline.set_random_seed(seed)
        self._seeded_in = os.getpid()

    @property
    def transforms(self) -> list:
        return list(self.pipeline.transforms)


class KeypointAugmenter:
    """Albumentations pipeline for an image with (N, 2) keypoints and left/right swap pairs."""

    def __init__(self, options: AugmentOptions, flip_pairs: list[tuple[int, int]] | None = None, fill: int = 0):
        self.flip_pairs = list(flip_pairs or [])
        transforms: list = [
            A.Affine(scale=(1 - options.scale, 1 + options.scale),
                     translate_percent=(-options.shift, options.shift),
                     rotate=(-options.rotate, options.rotate),
                     shear=(-options.shear, options.shear), keep_ratio=True,
                     border_mode=cv2.BORDER_CONSTANT, fill=fill, p=0.9),
            A.ColorJitter(brightness=options.color, contrast=options.color, saturation=options.color * 0.8,
                          hue=min(0.5, options.color * 0.1), p=0.8),
        ]
        if options.hflip and self.flip_pairs:
            transforms.append(A.HorizontalFlip(p=0.5))
        self.pipeline = SeededPipeline(A.Compose(
            transforms,
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            save_applied_params=True,
        ))

    def __call__(self, image: np.ndarray, points: np.ndarray, visible: np.ndarray):
        """Returns the augmented image, points and visibility (points pushed out of frame become invisible)."""
        safe = np.where(visible[:, None], points, 0.0).astype(np.float32)
        result = self.pipeline(image=image, keypoints=safe)
        out = np.asarray(result["keypoints"], dtype=np.float64).reshape(-1, 2)
        visible = visible.copy()
        if any(name == "HorizontalFlip" for name, _ in _applied(result)):
            order = np.arange(len(out))
            for i, j in self.flip_pairs:
                order[i], order[j] = j, i
            out, visible = out[order], visible[order]
        height, width = result["image"].shape[:2]
        inside = (out[:, 0] >= -0.5) & (out[:, 0] <= width - 0.5) & (out[:, 1] >= -0.5) & (out[:, 1] <= height - 0.5)
        return result["image"], out, visible & inside


def _applied(result: dict):
    applied = result.get("applied_transforms", [])
    return [(item[0], item[1]) if isinstance(item, (tuple, list)) else (str(item), {}) for item in applied]


def mask_augmenter(options: AugmentOptions, fill: int = 0) -> SeededPipeline:
    """Albumentations pipeline for an image and its mask (flip, shift-scale-rotate, colour)."""
    transforms: list = [
        A.Affine(scale=(1 - options.scale, 1 + options.scale), translate_percent=(-options.shift, options.shift),
                 rotate=(-options.rotate, options.rotate), shear=(-options.shear, options.shear), keep_ratio=True,
                 border_mode=cv2.BORDER_CONSTANT, fill=fill, fill_mask=0, p=0.9),
        A.ColorJitter(brightness=options.color, contrast=options.color, saturation=options.color * 0.8,
                      hue=min(0.5, options.color * 0.1), p=0.8),
    ]
    if options.hflip:
        transforms.insert(0, A.HorizontalFlip(p=0.5))
    return SeededPipeline(A.Compose(transforms))


class ChannelAugment:
    """The beetle paper's photometric augmentation, drawn on the fly instead of written to disk:
    add a constant to one RGB channel, or replace the image by one of its channels as gray."""

    def __init__(self, shift: float = 20.0, p_shift: float = 0.3, p_split: float = 0.3):
        self.shift, self.p_shift, self.p_split = shift, p_shift, p_split

    def __call__(self, image: np.ndarray) -> np.ndarray:
        # numpy's global generator: Lightning seeds it per data-loader worker.
        draw = np.random.random()
        channel = int(np.random.randint(0, 3))
        if draw < self.p_split:
            return np.repeat(image[..., channel:channel + 1], 3, axis=2)
        if draw < self.p_split + self.p_shift:
            out = image.astype(np.int16)
            out[..., channel] += int(round(np.random.uniform(-self.shift, self.shift)))
            return np.clip(out, 0, 255).astype(np.uint8)
        return image
