"""Dataset folders as the web app sees them: what is in one (images, annotations, predictions, per-image
confidence), running a model over all of its images, and writing corrected landmarks back.

Predictions for a dataset live beside it in ``shapekit-predictions.json`` (one file per dataset, the last
model run over it): ``{"model", "task", "kind", "created", "images": {file name: result}}`` where each result
is what the task's ``predict_image`` returned. The page sorts images by its ``score``.
"""

from __future__ import annotations

import datetime
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from ..errors import InputError, ShapekitError
from ..io import coco as coco_io
from ..io import csv_landmarks, tps
from ..io.atomic import atomic_open, write_json
from ..io.faces import is_face_dataset, load_face_set, updated_face_annotations
from ..io.images import IMAGE_SUFFIXES, image_size, read_image
from ..io.landmark_dataset import _image_name as image_file_name
from ..io.landmark_dataset import find_annotation_file, load_landmark_set, write_landmarks
from ..progress import track
from .workspace import PathRefused, Workspace

PREDICTIONS_FILE = "shapekit-predictions.json"
FORMAT_FILES = {"tps": "landmarks.tps", "coco": "annotations.json", "csv": "landmarks.csv"}
OUTPUT_FOLDERS = {"images", "masks", "labels", "overlays", "cutouts"}  # parts of a dataset, not datasets
Format = Literal["tps", "coco", "csv"]
FACE_FORMAT = "ibug68"  # shapekit's face dataset file (io/faces.py): read and saved, not offered for export


class ImagePoints(BaseModel):
    name: str = Field(description="image file name in the dataset's images/ folder")
    points: list[tuple[float, float] | None] = Field(description="[x, y] in image pixels (y down), null = missing")


class SaveRequest(BaseModel):
    images: list[ImagePoints]
    format: Format | None = Field(None, description="only for a dataset without an annotation file yet")
    names: list[str] | None = Field(None, description="landmark names, for a new annotation file")
    y_origin: Literal["bottom", "top"] | None = Field(None, description="TPS y axis; default: as the dataset was read")


class ExportImage(ImagePoints):
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class ExportRequest(BaseModel):
    format: Format
    names: list[str]
    images: list[ExportImage]
    y_origin: Literal["bottom", "top"] = "bottom"
    skeleton: list[tuple[int, int]] = Field(default_factory=list)


# --- finding and describing datasets -------------------------------------------------------------

def _image_files(folder: Path, workspace: Workspace) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir()
                      if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and workspace.inside(p))
    except OSError:
        return []


def dataset_kind(folder: Path) -> str | None:
    """"landmarks", "masks", "images" (a folder of photos, or images/ without annotations) or None."""
    if (folder / "images").is_dir():
        if (folder / "masks").is_dir() or (folder / "labels").is_dir():
            return "masks"
        try:
            find_annotation_file(folder)
            return "landmarks"
        except InputError:
            return "images"
    if folder.name not in OUTPUT_FOLDERS and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        return "images"
    return None


def list_datasets(workspace: Workspace, limit: int = 500) -> list[dict[str, Any]]:
    found = []
    for folder in workspace.walk():
        try:
            kind = dataset_kind(folder)
        except OSError:
            continue
        if kind is not None:
            found.append({"path": workspace.relative(folder), "kind": kind,
                          "predicted": (folder / PREDICTIONS_FILE).is_file()})
            if len(found) >= limit:
                break
    return found


def _images_dir(folder: Path) -> Path:
    return folder / "images" if (folder / "images").is_dir() else folder


def read_predictions(folder: Path) -> dict[str, Any] | None:
    path = folder / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"unreadable predictions file ({exc}); delete it and predict again") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise InputError(path, "not a shapekit predictions file; delete it and predict again")
    return data


def _load_landmarks(folder: Path, y_origin: str | None):
    """The landmark set and the TPS y axis it was read with. Without ``y_origin``, tpsDig's y-from-bottom is
    tried first and y-from-top second (the loader refuses a y axis that puts landmarks outside the images)."""
    if y_origin is not None:
        return load_landmark_set(folder, y_origin), y_origin
    try:
        return load_landmark_set(folder, "bottom"), "bottom"
    except InputError as first:
        if "y axis" not in str(first):
            raise
        try:
            return load_landmark_set(folder, "top"), "top"
        except InputError:
            raise first from None


def _load_annotations(folder: Path, y_origin: str | None):
    """(format, landmark names, skeleton, {image name: (N, 2) points}, {image name: (width, height)}, y axis:
    the TPS one used, else "top") of a dataset's annotation file, a face set's included (x, y shown and edited)."""
    if is_face_dataset(folder):
        faces = load_face_set(folder)
        return FACE_FORMAT, faces.names, [], {r.image_path.name: r.points[:, :2] for r in faces.records}, {}, "top"
    data, used_origin = _load_landmarks(folder, y_origin)
    points = {r.image_path.name: r.points for r in data.records}
    sizes = {r.image_path.name: (r.width, r.height) for r in data.records}
    return data.format, data.names, data.skeleton, points, sizes, used_origin if data.format == "tps" else "top"


def describe(workspace: Workspace, relative: str, y_origin: str | None = None) -> dict[str, Any]:
    folder = workspace.resolve(relative, kind="dir")
    kind = dataset_kind(folder)
    if kind is None:
        raise PathRefused(f"{relative or '.'}: not a dataset (no images/ folder and no images in it)", 404)
    info: dict[str, Any] = {"path": workspace.relative(folder), "kind": kind, "format": None,
                            "annotation_file": None, "y_origin": None, "names": [], "skeleton": [],
                            "can_save": (folder / "images").is_dir() and kind != "masks", "warnings": []}
    images_dir = _images_dir(folder)
    annotated: dict[str, Any] = {}
    flagged: dict[str, dict] = {}
    sizes: dict[str, tuple[int, int]] = {}
    masks: dict[str, str] = {}
    if kind == "landmarks":
        annotation_file = find_annotation_file(folder)
        if not workspace.inside(annotation_file):
            raise PathRefused(f"{workspace.relative(folder)}/{annotation_file.name}: leads outside the workspace", 403)
        fmt, names, skeleton, annotated, sizes, used_origin = _load_annotations(folder, y_origin)
        info.update({"format": fmt, "annotation_file": workspace.relative(annotation_file),
                     "y_origin": used_origin, "names": names, "skeleton": skeleton})
        if fmt == FACE_FORMAT:  # projected 3D landmarks overlap legitimately in profile views
            info["label_check"] = {"n_checked": 0, "n_flagged": 0, "note": "not run on 3D face sets"}
        else:
            flagged, info["label_check"] = _label_check(annotated, info["annotation_file"])
    elif kind == "masks":
        from ..io.masks import load_mask_set

        for record in load_mask_set(folder).records:
            if workspace.inside(record.mask_path):
                masks[record.image_path.name] = workspace.relative(record.mask_path)
    predictions = read_predictions(folder)
    predicted = (predictions or {}).get("images", {})
    if not info["names"] and predictions:
        info["names"] = next((r.get("names") for r in predicted.values() if r.get("names")), [])
        info["skeleton"] = next((r.get("skeleton") for r in predicted.values() if r.get("skeleton")), [])
    images = []
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if not workspace.inside(path):
            info["warnings"].append(f"{path.name}: leads outside the workspace, not shown")
            continue
        try:
            width, height = sizes.get(path.name) or image_size(path)
        except InputError as exc:
            info["warnings"].append(workspace.scrub(str(exc)))
            continue
        points = annotated.get(path.name)
        result = predicted.get(path.name)
        images.append({"name": path.name, "file": workspace.relative(path), "width": width, "height": height,
                       "points": None if points is None else _points_json(points),
                       "mask": masks.get(path.name),
                       "score": None if result is None else result.get("score"), "check": flagged.get(path.name),
                       "predicted": result is not None})
    info["images"] = images
    info["images_folder"] = workspace.relative(images_dir)
    info["predictions"] = None if predictions is None else {
        "file": f"{info['path']}/{PREDICTIONS_FILE}".lstrip("/"), "model": predictions.get("model"),
        "task": predictions.get("task"), "kind": predictions.get("kind"), "created": predictions.get("created")}
    return info


def _label_check(annotated: dict[str, np.ndarray], source: str) -> tuple[dict[str, dict], dict]:
    """`shapekit check` on the annotations as stored: what it says about each flagged image, and a summary
    (the page can list flagged images first, to be corrected)."""
    from ..label_check import check_configurations

    if not annotated:
        return {}, {"n_checked": 0, "n_flagged": 0, "note": "no annotations to check"}
    try:
        report = check_configurations(np.stack(list(annotated.values())).astype(float), list(annotated), source=source)
    except ShapekitError as exc:
        return {}, {"n_checked": 0, "n_flagged": 0, "note": str(exc)}
    flagged = {c.image: {"issue": c.issue, "landmarks": list(c.landmarks), "message": c.message,
                         "z": round(c.shape_z, 2)} for c in report["checks"] if c.issue}
    return flagged, {"n_checked": report["n_checked"], "n_flagged": report["n_flagged"],
                     "threshold": report["threshold"]}


def _points_json(points: np.ndarray) -> list:
    return [None if np.isnan(p).any() else [round(float(p[0]), 6), round(float(p[1]), 6)] for p in points]


def prediction_for(workspace: Workspace, relative: str, image: str) -> dict[str, Any]:
    folder = workspace.resolve(relative, kind="dir")
    predictions = read_predictions(folder)
    if predictions is None or image not in predictions["images"]:
        raise PathRefused(f"{relative}: no prediction for {image!r} (predict the dataset first)", 404)
    return predictions["images"][image]


def predict_dataset(workspace: Workspace, relative: str, loaded, runtime, test_time: str = "off") -> dict[str, Any]:
    """Run ``loaded`` (a serve.models.LoadedModel) over every image of the dataset, with the test-time views
    ``test_time``, and write the predictions file beside it (atomically). Blocking: the caller runs it in a
    worker thread."""
    folder = workspace.resolve(relative, kind="dir")
    if dataset_kind(folder) is None:
        raise PathRefused(f"{relative or '.'}: not a dataset", 404)
    results, failed = {}, []
    paths = _image_files(_images_dir(folder), workspace)
    for path in track(paths, f"predicting {workspace.relative(folder) or '.'}"):
        try:
            image = read_image(path)
        except InputError as exc:
            failed.append(workspace.scrub(str(exc)))
            continue
        result = loaded.predict(image, runtime, test_time)
        result.pop("milliseconds", None)
        results[path.name] = result
    kinds = {r["kind"] for r in results.values()}
    payload = {"model": loaded.name, "task": loaded.task.name, "test_time": test_time,
               "kind": kinds.pop() if len(kinds) == 1 else None,
               "created": datetime.datetime.now().isoformat(timespec="seconds"), "images": results}
    write_json(folder / PREDICTIONS_FILE, payload)
    scores = [r["score"] for r in results.values() if r.get("score") is not None]
    return {"n_images": len(results), "failed": failed, "test_time": test_time,
            "file": workspace.relative(folder / PREDICTIONS_FILE),
            "mean_score": float(np.mean(scores)) if scores else None, "kind": payload["kind"]}


# --- writing landmarks ---------------------------------------------------------------------------

def _check_points(item: ImagePoints, count: int, width: int, height: int) -> np.ndarray:
    if len(item.points) != count:
        raise ShapekitError(f"{item.name}: {len(item.points)} landmarks sent, the dataset has {count}")
    points = np.full((count, 2), np.nan)
    for k, point in enumerate(item.points):
        if point is None:
            continue
        x, y = point
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ShapekitError(f"{item.name}: landmark {k + 1} is not a finite number")
        if not (-1 <= x <= width + 1 and -1 <= y <= height + 1):
            raise ShapekitError(f"{item.name}: landmark {k + 1} ({x:.1f}, {y:.1f}) lies outside the "
                                f"{width}x{height} image")
        points[k] = (x, y)
    return points


def _dataset_image(workspace: Workspace, images_dir: Path, name: str) -> tuple[int, int]:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise PathRefused(f"{name!r}: expected an image file name from the dataset's images/ folder")
    path = images_dir / name
    if not path.is_file():
        raise PathRefused(f"{name}: no such image in the dataset", 404)
    if not workspace.inside(path):
        raise PathRefused(f"{name}: leads outside the workspace", 403)
    return image_size(path)


def _backup(path: Path) -> Path | None:
    """Copy ``path`` to ``<name>.bak-<timestamp>`` before it is replaced (nothing to do if it does not exist)."""
    if not path.exists():
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    shutil.copy2(path, backup)
    return backup


def _updated_tps(path: Path, updates: dict[str, np.ndarray], sizes, y_origin: str) -> list[tps.TpsSpecimen]:
    """The file's specimens with new points for the updated images; every other line (ID, SCALE, curves,
    comments) kept. Images not in the file yet are appended."""
    specimens = tps.read_tps(path)
    by_image = {image_file_name(s.image): s for s in specimens if s.image}
    for name, points in updates.items():
        stored = tps.from_top_origin(points, sizes[name][1]) if y_origin == "bottom" else points
        if name in by_image:
            by_image[name].points = stored
        else:
            specimens.append(tps.TpsSpecimen(stored, image=name, id=Path(name).stem))
    return specimens


def _updated_coco(path: Path, updates: dict[str, np.ndarray], sizes) -> coco_io.CocoKeypoints:
    """The file with new keypoints for the updated images (visibility flags kept where a point stays present,
    everything else in the file kept). Images not in the file yet are added."""
    coco = coco_io.read_coco_keypoints(path)
    by_name = {image_file_name(img["file_name"]): img for img in coco.images}
    by_image = coco.annotations_by_image()
    next_image = max([int(i["id"]) for i in coco.images if str(i["id"]).isdigit()] + [0]) + 1
    next_ann = max([int(a["id"]) for a in coco.annotations if str(a.get("id", "")).isdigit()] + [0]) + 1
    for name, points in updates.items():
        visible = ~np.isnan(points).any(1)
        image = by_name.get(name)
        if image is None:
            image = {"id": next_image, "file_name": name, "width": sizes[name][0], "height": sizes[name][1]}
            coco.images.append(image)
            next_image += 1
        annotations = by_image.get(image["id"], [])
        if len(annotations) > 1:
            raise InputError(path, f"image {name!r} has {len(annotations)} annotated objects; cannot update one")
        if not annotations:
            coco.annotations.append(coco_io.make_annotation(next_ann, image["id"], np.nan_to_num(points), visible,
                                                            coco.category.get("id", 1)))
            next_ann += 1
            continue
        annotation = annotations[0]
        old = coco.keypoints(annotation)
        flat = []
        for (x, y), shown, flag in zip(points, visible, old[:, 2]):
            flat += [round(float(x), 3), round(float(y), 3), int(flag) if flag > 0 else 2] if shown else [0.0, 0.0, 0]
        annotation["keypoints"] = flat
        annotation["num_keypoints"] = int(visible.sum())
    return coco


def _write_dataset_file(fmt: str, target: Path, folder: Path, updates: dict[str, np.ndarray], sizes,
                        names: list[str], y_origin: str, existing: bool) -> None:
    if fmt == FACE_FORMAT:
        write_json(target, updated_face_annotations(load_face_set(folder), updates))
    elif fmt == "tps" and existing:
        tps.write_tps(target, _updated_tps(folder / target.name, updates, sizes, y_origin))
    elif fmt == "coco" and existing:
        coco_io.write_coco_keypoints(target, _updated_coco(folder / target.name, updates, sizes))
    elif fmt == "csv" and existing:
        image_names, points, file_names = csv_landmarks.read_csv(folder / target.name)
        rows = {image_file_name(n): k for k, n in enumerate(image_names)}
        points = list(points)
        for name, new in updates.items():
            if name in rows:
                points[rows[name]] = new
            else:
                image_names.append(name)
                points.append(new)
        csv_landmarks.write_csv(target, image_names, np.asarray(points).reshape(len(image_names), -1, 2), file_names)
    else:
        ordered = list(updates)
        write_landmarks(target, fmt, ordered, np.stack([updates[n] for n in ordered]), names,
                        heights=[sizes[n][1] for n in ordered], widths=[sizes[n][0] for n in ordered],
                        y_origin=y_origin)


def save_annotations(workspace: Workspace, relative: str, request: SaveRequest) -> dict[str, Any]:
    """Write corrected landmarks into the dataset's annotation file (its own format, every other field of the
    file kept), atomically, after copying the previous file to ``<name>.bak-<timestamp>``. A dataset without
    annotations gets a new file in ``request.format``."""
    folder = workspace.resolve(relative, kind="dir")
    kind = dataset_kind(folder)
    if kind not in ("landmarks", "images") or not (folder / "images").is_dir():
        raise ShapekitError(f"{relative or '.'}: landmarks are saved into a dataset folder with images/ "
                            "(use export to download them instead)")
    if kind == "landmarks":
        annotation_file = find_annotation_file(folder)
        if not workspace.inside(annotation_file):
            raise PathRefused(f"{annotation_file.name}: leads outside the workspace", 403)
        fmt, names, _, _, _, used_origin = _load_annotations(folder, request.y_origin)
        existing = True
        if request.format is not None and request.format != fmt:
            raise ShapekitError(f"{workspace.relative(annotation_file)} is {fmt.upper()}: saving keeps its format "
                                f"(export converts to {request.format.upper()})")
        target = annotation_file
    else:
        fmt = request.format or "tps"
        names = list(request.names or [])
        if not names:
            raise ShapekitError("a new annotation file needs the landmark names")
        used_origin, existing = request.y_origin or "bottom", False
        target = folder / FORMAT_FILES[fmt]
    if not request.images:
        raise ShapekitError("no images sent")
    sizes, updates = {}, {}
    for item in request.images:
        sizes[item.name] = _dataset_image(workspace, folder / "images", item.name)
        updates[item.name] = _check_points(item, len(names), *sizes[item.name])
    with tempfile.TemporaryDirectory() as tmp:  # build the file fully before touching the dataset
        staged = Path(tmp) / target.name
        _write_dataset_file(fmt, staged, folder, updates, sizes, names, used_origin, existing)
        content = staged.read_bytes()
    backup = _backup(target)
    with atomic_open(target, "wb") as handle:
        handle.write(content)
    return {"file": workspace.relative(target), "backup": None if backup is None else workspace.relative(backup),
            "format": fmt, "n_images": len(updates), "y_origin": used_origin if fmt == "tps" else "top"}


def export_annotations(request: ExportRequest) -> tuple[str, bytes]:
    """(file name, content) of landmarks in any of the three formats, for a download (nothing is written
    anywhere the user would see)."""
    if not request.images:
        raise ShapekitError("no images to export")
    names, points, widths, heights = [], [], [], []
    for item in request.images:
        if not item.name or "/" in item.name or "\\" in item.name:
            raise ShapekitError(f"{item.name!r}: expected an image file name")
        names.append(item.name)
        points.append(_check_points(item, len(request.names), item.width, item.height))
        widths.append(item.width)
        heights.append(item.height)
    file_name = FORMAT_FILES[request.format]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / file_name
        write_landmarks(target, request.format, names, np.stack(points), request.names, heights=heights,
                        widths=widths, y_origin=request.y_origin, skeleton=[list(e) for e in request.skeleton])
        return file_name, target.read_bytes()

