"""Annotated landmark datasets on disk, recognised by their contents.

A dataset folder holds ``images/`` and one annotation file: ``landmarks.tps`` (tpsDig),
``annotations.json`` (COCO keypoints) or ``landmarks.csv``. Everything is loaded into
:class:`LandmarkSet`, whose points use image coordinates: x to the right, y down from the top
edge, in pixels of the image as displayed (EXIF orientation applied), NaN for missing landmarks.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError, ShapekitError
from . import coco as coco_io
from . import csv_landmarks, tps
from .images import image_size

YOrigin = Literal["bottom", "top"]
ANNOTATION_FILES = ("landmarks.tps", "annotations.json", "landmarks.csv")


@dataclass
class LandmarkRecord:
    image_path: Path
    points: np.ndarray  # (N, 2) image coordinates, NaN where missing
    id: str
    width: int
    height: int
    scale: float | None = None  # physical units per pixel (TPS SCALE=)

    @property
    def visible(self) -> np.ndarray:
        return ~np.isnan(self.points).any(axis=1)

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)


@dataclass
class LandmarkSet:
    records: list[LandmarkRecord]
    names: list[str]
    annotation_file: Path | None = None
    format: str = "tps"
    y_origin: YOrigin = "bottom"
    flip_pairs: list[tuple[int, int]] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_landmarks(self) -> int:
        return len(self.names)

    def subset(self, indices) -> "LandmarkSet":
        return replace(self, records=[self.records[i] for i in indices])


def find_annotation_file(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "dataset folder not found")
    for name in ANNOTATION_FILES:
        if (folder / name).is_file():
            return folder / name
    tps_files = sorted(folder.glob("*.tps")) + sorted(folder.glob("*.TPS"))
    if len(tps_files) == 1:
        return tps_files[0]
    raise InputError(folder, f"not a landmark dataset: expected images/ and one of {', '.join(ANNOTATION_FILES)}")


def images_folder(folder: Path) -> Path:
    images = folder / "images"
    if not images.is_dir():
        raise InputError(folder, "dataset has no images/ folder")
    return images


def _image_name(raw: str) -> str:
    # tpsDig writes whatever path the user digitised from, often a Windows one: keep the file name.
    return re.split(r"[\\/]", raw.strip())[-1]


def _resolve_image(images: Path, name: str, annotation_file: Path, what: str) -> Path:
    path = images / _image_name(name)
    if not path.is_file():
        raise InputError(annotation_file, f"{what}: image {name!r} is listed but missing from {images}")
    return path


def _check_in_bounds(records: list[LandmarkRecord], annotation_file: Path, hint: str) -> None:
    points = np.concatenate([r.points for r in records])
    sizes = np.concatenate([np.repeat([[r.width, r.height]], len(r.points), 0) for r in records])
    ok = ~np.isnan(points).any(1)
    outside = ok & ((points < -1).any(1) | (points > sizes + 1).any(1))
    if ok.any() and outside.sum() > 0.2 * ok.sum():
        raise InputError(annotation_file, f"{outside.sum()} of {ok.sum()} landmarks fall outside their images; {hint}")


def infer_flip_pairs(names: list[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) whose names differ only by left/right, e.g. left_collar / right_collar."""
    index = {name.lower(): k for k, name in enumerate(names)}
    pairs = []
    for k, name in enumerate(names):
        low = name.lower()
        if "left" in low:
            other = index.get(low.replace("left", "right"))
            if other is not None:
                pairs.append((k, other))
    return pairs


def load_landmark_set(folder: str | Path, y_origin: YOrigin = "bottom") -> LandmarkSet:
    """Load a dataset folder (images/ + landmarks.tps | annotations.json | landmarks.csv)."""
    folder = Path(folder)
    annotation_file = find_annotation_file(folder)
    images = images_folder(folder)
    suffix = annotation_file.suffix.lower()
    if suffix == ".tps":
        return _load_tps(annotation_file, images, y_origin)
    if suffix == ".json":
        return _load_coco(annotation_file, images)
    return _load_csv(annotation_file, images)


def _load_tps(path: Path, images: Path, y_origin: YOrigin) -> LandmarkSet:
    specimens = tps.read_tps(path)
    expected = len(specimens[0].points)
    records = []
    for k, spec in enumerate(specimens):
        label = f"specimen {k + 1}" + (f" (ID={spec.id})" if spec.id else "")
        if len(spec.points) != expected:
            raise InputError(path, f"{label} has LM={len(spec.points)} but the first specimen has LM={expected}", spec.line)
        if spec.points.shape[1] != 2:
            raise InputError(path, f"{label} has 3D landmarks (LM3=); the 2D landmark tasks need LM=", spec.line)
        if not spec.image:
            raise InputError(path, f"{label} has no IMAGE= line", spec.line)
        image_path = _resolve_image(images, spec.image, path, label)
        width, height = image_size(image_path)
        points = tps.to_top_origin(spec.points, height) if y_origin == "bottom" else spec.points.copy()
        records.append(LandmarkRecord(image_path, points, spec.id or Path(spec.image).stem, width, height, spec.scale))
    other = "top" if y_origin == "bottom" else "bottom"
    _check_in_bounds(records, path, f"is the y axis measured from the {other} (try --y-origin {other})?")
    names = [f"lm{k + 1}" for k in range(expected)]
    return LandmarkSet(records, names, path, "tps", y_origin)


def _load_coco(path: Path, images: Path) -> LandmarkSet:
    coco = coco_io.read_coco_keypoints(path)
    by_image = coco.annotations_by_image()
    records = []
    for img in coco.images:
        anns = by_image.get(img["id"], [])
        if not anns:
            continue  # an unannotated image is not training data
        if len(anns) > 1:
            raise InputError(path, f"image {img['file_name']!r} has {len(anns)} annotated objects; "
                                   "the landmark tasks need one object per image (crop them first)")
        image_path = _resolve_image(images, img["file_name"], path, f"image id {img['id']}")
        width, height = image_size(image_path)
        if img.get("width") and img.get("height") and (img["width"], img["height"]) != (width, height):
            raise InputError(image_path, f"is {width}x{height} but {path.name} says {img['width']}x{img['height']}")
        kp = coco.keypoints(anns[0])
        points = kp[:, :2].copy()
        points[kp[:, 2] <= 0] = np.nan
        records.append(LandmarkRecord(image_path, points, str(img["id"]), width, height))
    if not records:
        raise InputError(path, "no annotated images")
    _check_in_bounds(records, path, "are the keypoints in pixels of these images?")
    return LandmarkSet(records, coco.keypoint_names, path, "coco", "top", infer_flip_pairs(coco.keypoint_names),
                       coco.skeleton)


def _load_csv(path: Path, images: Path) -> LandmarkSet:
    names_in_file, points, landmark_names = csv_landmarks.read_csv(path)
    records = []
    for k, (name, pts) in enumerate(zip(names_in_file, points)):
        image_path = _resolve_image(images, name, path, f"row {k + 2}")
        width, height = image_size(image_path)
        records.append(LandmarkRecord(image_path, pts, Path(name).stem, width, height))
    _check_in_bounds(records, path, "are the coordinates in pixels of these images, y down?")
    return LandmarkSet(records, landmark_names, path, "csv", "top", infer_flip_pairs(landmark_names))


# --- writing -------------------------------------------------------------------------------------

def write_landmarks(path: str | Path, fmt: str, image_names: list[str], points: np.ndarray, names: list[str],
                    heights: list[int], widths: list[int], y_origin: YOrigin = "bottom",
                    confidence: np.ndarray | None = None, scales: list[float | None] | None = None,
                    skeleton: list[list[int]] | None = None) -> Path:
    """Write (M, N, 2) image-coordinate points as TPS, COCO keypoints or CSV."""
    points = np.asarray(points, dtype=np.float64)
    if fmt == "tps":
        specimens = []
        for k, name in enumerate(image_names):
            pts = tps.from_top_origin(points[k], heights[k]) if y_origin == "bottom" else points[k]
            specimens.append(tps.TpsSpecimen(pts, image=name, id=Path(name).stem,
                                             scale=None if scales is None else scales[k]))
        return tps.write_tps(path, specimens)
    if fmt == "coco":
        images, annotations = [], []
        for k, name in enumerate(image_names):
            images.append({"id": k + 1, "file_name": name, "width": int(widths[k]), "height": int(heights[k])})
            visible = ~np.isnan(points[k]).any(1)
            annotations.append(coco_io.make_annotation(
                k + 1, k + 1, np.nan_to_num(points[k]), visible,
                scores=None if confidence is None else confidence[k]))
        coco = coco_io.CocoKeypoints(names, skeleton or [], {"id": 1, "name": "object", "supercategory": "object"},
                                     images, annotations)
        return coco_io.write_coco_keypoints(path, coco)
    if fmt == "csv":
        return csv_landmarks.write_csv(path, image_names, points, names, confidence)
    raise ShapekitError(f"unknown landmark format {fmt!r}; choose tps, coco or csv")


OUTPUT_FILES = {"tps": "predictions.tps", "coco": "predictions.json", "csv": "predictions.csv"}


# --- splitting ------------------------------------------------------------------------------------

def split_indices(n: int, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not 0 < test_fraction < 1:
        raise ShapekitError(f"test fraction must be between 0 and 1, got {test_fraction}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(n * test_fraction))
    if n_test >= n:
        raise ShapekitError(f"cannot split {n} images into train and test")
    return sorted(order[n_test:]), sorted(order[:n_test])


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.symlink(src.resolve(), dst)
    except OSError:  # file systems without symlinks
        shutil.copy2(src, dst)


def kfold_indices(n: int, rounds: int, seed: int) -> list[list[int]]:
    """``rounds`` disjoint test folds covering every index once (shuffled with ``seed``)."""
    if rounds < 2 or rounds > n:
        raise ShapekitError(f"--rounds {rounds}: need between 2 and {n} (the number of images)")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[k::rounds]) for k in range(rounds)]


def split_dataset(folder: str | Path, out: str | Path, test_fraction: float = 0.2, seed: int = 0,
                  names: tuple[str, str] = ("train", "test")) -> tuple[Path, Path]:
    """Split a dataset folder into two dataset folders; images are symlinked, annotations subset as-is.

    Works for landmark folders (TPS / COCO / CSV) and mask folders (masks/ or labels/)."""
    folder = Path(folder)
    count = _count_items(folder)
    parts = dict(zip(names, split_indices(count, test_fraction, seed)))
    outputs = write_subsets(folder, out, parts)
    return outputs[names[0]], outputs[names[1]]


def _count_items(folder: Path) -> int:
    if (folder / "masks").is_dir() or (folder / "labels").is_dir():
        from .masks import load_mask_set

        return len(load_mask_set(folder))
    return len(_annotated_items(folder)[1])


def _annotated_items(folder: Path):
    """(annotation file, items in file order, their image names, extra) for a landmark dataset folder."""
    annotation_file = find_annotation_file(folder)
    suffix = annotation_file.suffix.lower()
    if suffix == ".tps":
        items = tps.read_tps(annotation_file)
        return annotation_file, items, [_image_name(s.image or "") for s in items], None
    if suffix == ".json":
        coco = coco_io.read_coco_keypoints(annotation_file)
        annotated = coco.annotations_by_image()
        items = [img for img in coco.images if annotated.get(img["id"])]
        return annotation_file, items, [_image_name(img["file_name"]) for img in items], coco
    image_names, points, landmark_names = csv_landmarks.read_csv(annotation_file)
    return annotation_file, list(range(len(image_names))), [_image_name(n) for n in image_names], \
        (image_names, points, landmark_names)


def write_subsets(folder: str | Path, out: str | Path, parts: dict[str, list[int]],
                  renumber: dict[int, np.ndarray] | None = None) -> dict[str, Path]:
    """Write ``out/<name>`` dataset folders holding the given items of ``folder`` (images symlinked).

    ``renumber`` maps an item to a landmark order (0-based): its landmark k becomes the item's landmark
    ``order[k]`` (for label repairs; the source folder is never written)."""
    folder, out = Path(folder), Path(out)
    renumber = renumber or {}
    for name in parts:
        if (out / name).resolve() == folder.resolve():
            raise ShapekitError(f"{out / name}: refusing to write a split over its source dataset")
    if (folder / "masks").is_dir() or (folder / "labels").is_dir():
        return {name: _write_mask_subset(folder, out / name, indices) for name, indices in parts.items()}
    annotation_file, items, image_of, extra = _annotated_items(folder)
    images = images_folder(folder)
    suffix = annotation_file.suffix.lower()
    outputs = {}
    for name, indices in parts.items():
        target = out / name
        for i in indices:
            _link_or_copy(images / image_of[i], target / "images" / image_of[i])
        if suffix == ".tps":
            tps.write_tps(target / "landmarks.tps",
                          [replace(items[i], points=items[i].points[renumber[i]]) if i in renumber else items[i]
                           for i in indices])
        elif suffix == ".json":
            coco = extra
            keep = {items[i]["id"]: renumber.get(i) for i in indices}
            annotations = [_renumbered_annotation(coco, a, keep[a["image_id"]]) for a in coco.annotations
                           if a["image_id"] in keep]
            subset = coco_io.CocoKeypoints(coco.keypoint_names, coco.skeleton, coco.category,
                                           [items[i] for i in indices], annotations, coco.info)
            coco_io.write_coco_keypoints(target / "annotations.json", subset)
        else:
            image_names, points, landmark_names = extra
            subset = points[indices]
            for row, i in enumerate(indices):
                if i in renumber:
                    subset[row] = points[i][renumber[i]]
            csv_landmarks.write_csv(target / "landmarks.csv", [image_names[i] for i in indices],
                                    subset, landmark_names)
        outputs[name] = target
    return outputs


def _renumbered_annotation(coco, annotation: dict, order: np.ndarray | None) -> dict:
    if order is None:
        return annotation
    keypoints = coco.keypoints(annotation)[order]
    return {**annotation, "keypoints": [float(v) if k % 3 < 2 else int(v) for k, v in enumerate(keypoints.ravel())]}


def _write_mask_subset(folder: Path, target: Path, indices: list[int]) -> Path:
    from .masks import load_mask_set

    data = load_mask_set(folder)
    for i in indices:
        record = data.records[i]
        _link_or_copy(record.image_path, target / "images" / record.image_path.name)
        _link_or_copy(record.mask_path, target / record.mask_path.parent.name / record.mask_path.name)
    if (folder / "classes.txt").is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / "classes.txt", target / "classes.txt")
    return target
