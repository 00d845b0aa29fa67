"""Face landmark datasets: ``images/`` + ``annotations.json`` with 68 iBUG points per image, 2D (x, y) or
3D (x, y, z), and optionally a head pose per image (pitch, yaw, roll in degrees).

This is the layout of the staged AFLW2000-3D (3D, with poses) and InfAnFace (2D) copies:
``{"scheme": "ibug68", "landmarks": {"file.jpg": [[x, y, z], ...]}, "pose_pitch_yaw_roll_deg": {...}}``.
Coordinates: x right, y down, in pixels of the image; larger z = closer to the camera, with an arbitrary
per-image offset (only relative depth means anything).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import write_json
from .landmark_dataset import _link_or_copy, images_folder

ANNOTATIONS = "annotations.json"
# A pose angle beyond this is one of AFLW2000-3D's known broken Pose_Para values: no yaw for that image.
MAX_VALID_ANGLE = 99.0
# AFLW2000-3D's pt3d_68 come from MATLAB (1-based pixels): subtract 1 for shapekit's 0-based pixel centres.
MATLAB_SOURCES = ("pt3d_68",)

_GROUPS = (("jaw", 17), ("right_brow", 5), ("left_brow", 5), ("nose_bridge", 4), ("nose_base", 5),
           ("right_eye", 6), ("left_eye", 6), ("outer_lip", 12), ("inner_lip", 8))
IBUG68_NAMES = [f"{group}_{k + 1}" for group, count in _GROUPS for k in range(count)]

# Left/right mirror pairs of the 68-point scheme (0-based): what a horizontal flip swaps.
IBUG68_FLIP_PAIRS = (
    [(k, 16 - k) for k in range(8)] + [(17 + k, 26 - k) for k in range(5)] + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (60, 64), (61, 63), (59, 55), (58, 56), (67, 65)])
OUTER_EYE_CORNERS = (36, 45)


@dataclass
class FaceRecord:
    image_path: Path
    points: np.ndarray  # (68, 2) or (68, 3)
    yaw: float | None  # degrees; None without a usable pose
    pose: tuple[float, float, float] | None = None

    @property
    def has_depth(self) -> bool:
        return self.points.shape[1] == 3


@dataclass
class FaceSet:
    records: list[FaceRecord]
    folder: Path
    names: list[str]
    raw: dict  # the annotation file's content (to write subsets)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def has_depth(self) -> bool:
        return all(r.has_depth for r in self.records)

    def subset(self, indices) -> "FaceSet":
        return replace(self, records=[self.records[i] for i in indices])


def is_face_dataset(folder: str | Path) -> bool:
    path = Path(folder) / ANNOTATIONS
    if not path.is_file():
        return False
    try:
        with open(path) as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return '"scheme"' in head and "ibug68" in head


def load_face_set(folder: str | Path) -> FaceSet:
    folder = Path(folder)
    path = folder / ANNOTATIONS
    if not path.is_file():
        raise InputError(folder, f"not a face landmark dataset: no {ANNOTATIONS}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON ({exc.msg})", exc.lineno) from None
    if not isinstance(raw, dict) or raw.get("scheme") != "ibug68" or not isinstance(raw.get("landmarks"), dict):
        raise InputError(path, 'expected {"scheme": "ibug68", "landmarks": {"image.jpg": [[x, y(, z)] x 68]}}')
    images = images_folder(folder)
    base = _pixel_base(raw)
    poses = raw.get("pose_pitch_yaw_roll_deg") or {}
    records = []
    for name in sorted(raw["landmarks"]):
        points = np.asarray(raw["landmarks"][name], dtype=np.float64)
        if points.ndim != 2 or points.shape[0] != 68 or points.shape[1] not in (2, 3):
            raise InputError(path, f"{name}: expected 68 points of (x, y) or (x, y, z), got shape {points.shape}")
        image_path = images / name
        if not image_path.is_file():
            raise InputError(path, f"image {name!r} is listed but missing from {images}")
        points[:, :2] -= base
        pose = poses.get(name)
        usable = pose is not None and len(pose) == 3 and all(abs(float(a)) < MAX_VALID_ANGLE for a in pose)
        records.append(FaceRecord(image_path, points, float(pose[1]) if usable else None,
                                  tuple(float(a) for a in pose) if usable else None))
    if not records:
        raise InputError(path, "no annotated images")
    dims = {r.points.shape[1] for r in records}
    if len(dims) > 1:
        raise InputError(path, "mixes 2D and 3D landmarks; use one kind per dataset")
    return FaceSet(records, folder, list(IBUG68_NAMES), raw)


def _pixel_base(raw: dict) -> float:
    """What the file's x, y add to shapekit's 0-based pixel centres (its index base, +1 for MATLAB sources)."""
    offset = 1.0 if any(s in str(raw.get("z_convention", "")) for s in MATLAB_SOURCES) else 0.0
    return float(raw.get("index_base", 0)) + offset


def updated_face_annotations(data: FaceSet, updates: dict[str, np.ndarray]) -> dict:
    """The annotation file's content with new (x, y) for some images ({file name: (68, 2)} in 0-based pixels),
    written back in the file's own index base; each point's z and every other field are kept."""
    raw = json.loads(json.dumps(data.raw))  # a deep copy
    base = _pixel_base(raw)
    for name, points in updates.items():
        if name not in raw["landmarks"]:
            raise InputError(data.folder / ANNOTATIONS, f"{name}: not annotated in this face dataset")
        old = np.asarray(raw["landmarks"][name], dtype=np.float64)
        old[:, :2] = np.asarray(points, dtype=np.float64) + base
        raw["landmarks"][name] = [[round(float(v), 4) for v in p] for p in old]
    return raw


def heldout_split(count: int, every: int = 10) -> tuple[list[int], list[int]]:
    """The fixed benchmark split: every ``every``-th image by sorted file name is held out."""
    heldout = list(range(every - 1, count, every))
    chosen = set(heldout)
    return [i for i in range(count) if i not in chosen], heldout


def write_face_subset(data: FaceSet, indices, target: str | Path) -> Path:
    """A dataset folder with the given records (images symlinked, annotations filtered)."""
    target = Path(target)
    if target.resolve() == data.folder.resolve():
        raise InputError(target, "refusing to write a subset over its source dataset")
    names = [data.records[i].image_path.name for i in indices]
    keep = set(names)
    out = {k: ({n: v for n, v in value.items() if n in keep} if isinstance(value, dict) and
               set(value) & set(data.raw["landmarks"]) else value) for k, value in data.raw.items()}
    for name in names:
        _link_or_copy(data.folder / "images" / name, target / "images" / name)
    write_json(target / ANNOTATIONS, out)
    return target
