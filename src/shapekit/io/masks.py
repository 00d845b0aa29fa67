"""Segmentation datasets: ``images/`` plus ``masks/`` (binary PNG, 0 = background, >0 = object) or
``labels/`` (class-id PNG, one byte per pixel) with an optional ``classes.txt`` ("id name" per line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from .images import IMAGE_SUFFIXES, image_size


@dataclass
class MaskRecord:
    image_path: Path
    mask_path: Path
    id: str
    width: int
    height: int


@dataclass
class MaskSet:
    records: list[MaskRecord]
    mode: str  # "binary" or "multiclass"
    class_names: list[str] = field(default_factory=list)  # index = class id
    folder: Path | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return 1 if self.mode == "binary" else len(self.class_names)

    def subset(self, indices) -> "MaskSet":
        return MaskSet([self.records[i] for i in indices], self.mode, self.class_names, self.folder)


def read_classes(path: Path) -> list[str]:
    names: dict[int, str] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[0].isdigit():
            index, name = int(parts[0]), parts[1].strip()
        else:  # a bare list of names, one per line, ids in order
            index, name = len(names), line.strip()
        if index in names:
            raise InputError(path, f"class id {index} is listed twice", line_no)
        names[index] = name
    if not names:
        raise InputError(path, "no classes listed")
    if sorted(names) != list(range(len(names))):
        raise InputError(path, f"class ids must run 0..{len(names) - 1} without gaps")
    return [names[k] for k in range(len(names))]


def read_mask(path: Path, mode: str, num_classes: int | None = None) -> np.ndarray:
    """Binary masks as uint8 0/1, label maps as uint8/int class ids; checks ids against the class list."""
    try:
        with Image.open(path) as image:
            image.load()
            if mode == "binary":
                array = np.asarray(image.convert("L"))
                return (array > 127).astype(np.uint8) if array.max() > 1 else array.astype(np.uint8)
            if image.mode not in ("L", "P", "I", "I;16"):
                raise InputError(path, f"label maps must be single-channel class-id PNGs, found mode {image.mode}")
            array = np.asarray(image)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"unreadable mask ({exc})") from None
    if num_classes is not None and array.size and int(array.max()) >= num_classes:
        raise InputError(path, f"label id {int(array.max())} is beyond classes.txt (ids 0..{num_classes - 1})")
    return array.astype(np.int64 if array.max() > 255 else np.uint8)


def load_mask_set(folder: str | Path, mode: str | None = None) -> MaskSet:
    folder = Path(folder)
    images = folder / "images"
    if not images.is_dir():
        raise InputError(folder, "segmentation dataset has no images/ folder")
    if mode is None:
        mode = "binary" if (folder / "masks").is_dir() else "multiclass" if (folder / "labels").is_dir() else None
    if mode is None:
        raise InputError(folder, "segmentation dataset needs masks/ (binary) or labels/ (class ids) beside images/")
    mask_dir = folder / ("masks" if mode == "binary" else "labels")
    if not mask_dir.is_dir():
        raise InputError(folder, f"no {mask_dir.name}/ folder for {mode} masks")
    masks = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.suffix.lower() in (".png", ".bmp", ".tif", ".tiff")}
    if not masks:
        raise InputError(mask_dir, "is empty: no mask PNGs")
    class_names = ["background", "object"]
    if mode == "multiclass":
        classes_file = folder / "classes.txt"
        if classes_file.is_file():
            class_names = read_classes(classes_file)
        else:
            top = max(int(np.asarray(Image.open(p)).max()) for p in masks.values())
            class_names = [f"class{k}" for k in range(top + 1)]
    records = []
    for image_path in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask_path = masks.get(image_path.stem)
        if mask_path is None:
            continue  # unlabelled image
        width, height = image_size(image_path)
        with Image.open(mask_path) as mask:
            if mask.size != (width, height):
                raise InputError(mask_path, f"mask is {mask.size[0]}x{mask.size[1]} but its image "
                                            f"{image_path.name} is {width}x{height}")
        records.append(MaskRecord(image_path, mask_path, image_path.stem, width, height))
    if not records:
        raise InputError(folder, f"no image in images/ has a mask of the same name in {mask_dir.name}/")
    return MaskSet(records, mode, class_names, folder)
