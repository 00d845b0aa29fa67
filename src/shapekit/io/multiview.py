"""Multi-view object folders: ``views`` + silhouettes + ``cameras.json`` per object.

Layout (as in ../shared/data/shoes/*/renders)::

    OBJECT/cameras.json            {"yfov_rad": ..., "image_size": ..., "frames": [
                                      {"file": "view_000.png", "mask": "view_000_mask.png",
                                       "azimuth_deg": ..., "elevation_deg": ..., "cam2world": 4x4}, ...]}
    OBJECT/view_000.png, OBJECT/view_000_mask.png, ...

``cam2world`` follows OpenGL: the camera looks down its -Z axis with +Y up.
A data set is a folder of such object folders (a ``renders/`` subfolder is also accepted).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import read_image


@dataclass
class MultiViewObject:
    folder: Path
    files: list[Path]
    masks: list[Path]
    cam2world: np.ndarray  # (N, 4, 4)
    yfov: float
    image_size: int
    azimuth: np.ndarray  # (N,) degrees
    elevation: np.ndarray  # (N,) degrees
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name if self.folder.name != "renders" else self.folder.parent.name

    def __len__(self) -> int:
        return len(self.files)

    def load(self, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Views (N, S, S, 3) uint8 and masks (N, S, S) float in [0, 1], resized to ``size``."""
        import cv2

        views, masks = [], []
        for image_path, mask_path in zip(self.files, self.masks):
            image = read_image(image_path)
            mask = read_image(mask_path)[..., 0].astype(np.float32) / 255.0
            if image.shape[:2] != mask.shape:
                raise InputError(mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]} but its view is "
                                            f"{image.shape[1]}x{image.shape[0]}")
            if size and image.shape[0] != size:
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
            views.append(image)
            masks.append(mask)
        return np.stack(views), np.stack(masks)


def _matrix(value, path: Path, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, f"{where}: cam2world is not a numeric matrix") from None
    if array.shape != (4, 4):
        raise InputError(path, f"{where}: cam2world must be 4x4, got {'x'.join(map(str, array.shape)) or 'a scalar'}")
    if not np.isfinite(array).all():
        raise InputError(path, f"{where}: cam2world has non-finite values")
    rotation = array[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or not np.allclose(array[3], [0, 0, 0, 1]):
        raise InputError(path, f"{where}: cam2world is not a rigid transform (rotation + translation)")
    return array


def load_multiview_object(folder: str | Path) -> MultiViewObject:
    folder = Path(folder)
    if (folder / "renders" / "cameras.json").is_file():
        folder = folder / "renders"
    path = folder / "cameras.json"
    if not path.is_file():
        raise InputError(folder, "no cameras.json (not a multi-view object folder)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg}", exc.lineno) from None
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not frames:
        raise InputError(path, "needs a non-empty 'frames' list")
    yfov = data.get("yfov_rad")
    if not isinstance(yfov, (int, float)) or not 0 < yfov < math.pi:
        raise InputError(path, f"'yfov_rad' must be an angle in radians between 0 and pi, got {yfov!r}")
    files, masks, matrices, azimuth, elevation = [], [], [], [], []
    for k, frame in enumerate(frames):
        where = f"frames[{k}]"
        if not isinstance(frame, dict) or "file" not in frame or "cam2world" not in frame:
            raise InputError(path, f"{where} needs 'file' and 'cam2world'")
        image = folder / frame["file"]
        mask = folder / frame.get("mask", Path(frame["file"]).stem + "_mask.png")
        for needed in (image, mask):
            if not needed.is_file():
                raise InputError(path, f"{where}: {needed.name} is missing")
        files.append(image)
        masks.append(mask)
        matrices.append(_matrix(frame["cam2world"], path, where))
        azimuth.append(float(frame.get("azimuth_deg", math.nan)))
        elevation.append(float(frame.get("elevation_deg", math.nan)))
    size = int(data.get("image_size") or 0)
    extra = {k: v for k, v in data.items() if k not in ("frames", "yfov_rad", "image_size")}
    return MultiViewObject(folder, files, masks, np.stack(matrices), float(yfov), size, np.array(azimuth),
                           np.array(elevation), extra)


def load_multiview_set(root: str | Path) -> list[MultiViewObject]:
    """Every object folder under ``root`` (or ``root`` itself when it is one object)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "multi-view data folder not found")
    if (root / "cameras.json").is_file() or (root / "renders" / "cameras.json").is_file():
        return [load_multiview_object(root)]
    objects = [load_multiview_object(p) for p in sorted(root.iterdir())
               if p.is_dir() and ((p / "cameras.json").is_file() or (p / "renders" / "cameras.json").is_file())]
    if not objects:
        raise InputError(root, "no object folders with cameras.json inside")
    return objects


def write_cameras(path: Path, frames: list[dict], yfov: float, image_size: int, **extra) -> Path:
    from .atomic import write_json

    return write_json(path, {"yfov_rad": yfov, "image_size": image_size, **extra, "frames": frames})
