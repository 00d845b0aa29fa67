"""COCO keypoint files (the format of MMPose, DeepLabCut exports, CVAT, Label Studio...)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .atomic import write_json


@dataclass
class CocoKeypoints:
    keypoint_names: list[str]
    skeleton: list[list[int]] = field(default_factory=list)
    category: dict[str, Any] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)  # as in the file (id, file_name, width, height...)
    annotations: list[dict[str, Any]] = field(default_factory=list)  # as in the file
    info: dict[str, Any] = field(default_factory=dict)

    def keypoints(self, annotation: dict[str, Any]) -> np.ndarray:
        """(N, 3) array of x, y, v for one annotation."""
        return np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)

    def annotations_by_image(self) -> dict[int, list[dict[str, Any]]]:
        grouped: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in self.images}
        for ann in self.annotations:
            grouped.setdefault(ann["image_id"], []).append(ann)
        return grouped


def _require(obj: Any, key: str, kind: type | tuple, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(path, f"{where} has no '{key}' field")
    value = obj[key]
    if not isinstance(value, kind):
        raise InputError(path, f"{where}: '{key}' should be {getattr(kind, '__name__', kind)}")
    return value


def read_coco_keypoints(path: str | Path, category_id: int | None = None) -> CocoKeypoints:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "COCO annotation file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a COCO object with 'images', 'annotations' and 'categories'")
    categories = _require(data, "categories", list, path, "file")
    with_keypoints = [c for c in categories if isinstance(c, dict) and c.get("keypoints")]
    if category_id is not None:
        with_keypoints = [c for c in with_keypoints if c.get("id") == category_id]
    if not with_keypoints:
        raise InputError(path, "no category with a 'keypoints' list (not a COCO keypoints file?)")
    if len(with_keypoints) > 1 and category_id is None:
        ids = ", ".join(str(c.get("id")) for c in with_keypoints)
        raise InputError(path, f"several keypoint categories ({ids}); choose one with category_id")
    category = with_keypoints[0]
    names = [str(n) for n in category["keypoints"]]

    images = _require(data, "images", list, path, "file")
    image_ids = set()
    for k, img in enumerate(images):
        _require(img, "file_name", str, path, f"images[{k}]")
        image_ids.add(_require(img, "id", (int, str), path, f"images[{k}]"))

    annotations = []
    for k, ann in enumerate(_require(data, "annotations", list, path, "file")):
        where = f"annotations[{k}] (id {ann.get('id')})" if isinstance(ann, dict) else f"annotations[{k}]"
        if ann.get("category_id", category["id"]) != category["id"]:
            continue
        keypoints = _require(ann, "keypoints", list, path, where)
        if len(keypoints) != 3 * len(names):
            raise InputError(
                path, f"{where} has {len(keypoints)} keypoint values, expected {3 * len(names)} (3 x {len(names)} landmarks)"
            )
        if not all(isinstance(v, (int, float)) for v in keypoints):
            raise InputError(path, f"{where} has non-numeric keypoint values")
        if _require(ann, "image_id", (int, str), path, where) not in image_ids:
            raise InputError(path, f"{where} refers to image_id {ann['image_id']} which is not in 'images'")
        annotations.append(ann)
    return CocoKeypoints(
        keypoint_names=names,
        skeleton=[list(e) for e in category.get("skeleton", [])],
        category=category,
        images=images,
        annotations=annotations,
        info=data.get("info", {}),
    )


def write_coco_keypoints(path: str | Path, coco: CocoKeypoints) -> Path:
    category = dict(coco.category) or {"id": 1, "name": "object", "supercategory": "object"}
    category["keypoints"] = list(coco.keypoint_names)
    category["skeleton"] = coco.skeleton
    payload = {
        "info": coco.info or {"description": "written by shapekit"},
        "images": coco.images,
        "annotations": coco.annotations,
        "categories": [category],
    }
    return write_json(path, payload)


def make_annotation(ann_id: int, image_id: int, points: np.ndarray, visible: np.ndarray, category_id: int = 1,
                    scores: np.ndarray | None = None) -> dict[str, Any]:
    """A COCO keypoint annotation from (N, 2) points; bbox spans the visible points."""
    flat: list[float] = []
    for (x, y), vis in zip(points, visible):
        flat.extend([round(float(x), 3), round(float(y), 3), 2] if vis else [0.0, 0.0, 0])
    shown = points[np.asarray(visible, dtype=bool)]
    if len(shown):
        x0, y0 = shown.min(0)
        x1, y1 = shown.max(0)
        bbox = [round(float(x0), 3), round(float(y0), 3), round(float(x1 - x0), 3), round(float(y1 - y0), 3)]
    else:
        bbox = [0.0, 0.0, 0.0, 0.0]
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "keypoints": flat,
        "num_keypoints": int(np.count_nonzero(visible)),
        "bbox": bbox,
        "area": round(bbox[2] * bbox[3], 3),
        "iscrowd": 0,
    }
    if scores is not None:
        ann["keypoint_scores"] = [round(float(s), 4) for s in scores]
        ann["score"] = round(float(np.mean(scores)), 4) if len(scores) else 0.0
    return ann
