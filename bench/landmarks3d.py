"""3D face landmark benchmark on the AFLW2000-3D images the shipped model never trained on.

The fixed held-out split (every 10th image by sorted name, ``shapekit.io.faces.heldout_split``) is scored
side by side, in one run, for:

- shapekit's landmarks3d cascade (the shipped model, or --model), on the box around the true landmarks (the
  AFLW2000-3D protocol) and on MTCNN / dlib-HOG detector boxes;
- dlib's shipped 68-point shape predictor (``face-recognition-models``, 2D, trained on iBUG 300-W) on the same
  boxes, and on its own HOG detector's boxes;
- a constant baseline: the mean training shape placed in the true box, each landmark at its mean relative depth.

    python bench/landmarks3d.py [--model CKPT]

Prints one table (NME by sqrt(box area), by |yaw| bin, GTE, CVGTCE, z error, in percent; faces/s) and writes
bench/results/landmarks3d.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, WORK, console, print_table, save_results  # noqa: E402

from shapekit.engine import Runtime, load_model  # noqa: E402
from shapekit.engine.onnx import OnnxForward, export_onnx  # noqa: E402
from shapekit.face_detect import detect_faces  # noqa: E402
from shapekit.io.faces import heldout_split, load_face_set, write_face_subset  # noqa: E402
from shapekit.io.images import read_image  # noqa: E402
from shapekit.metrics import box_size  # noqa: E402
from shapekit.plots import plot_ced  # noqa: E402
from shapekit.tasks.landmarks3d import Landmarks3DTask, box_iou, landmark_box, landmarks3d_report  # noqa: E402

SOURCE = DATA / "aflw2000-3d"


def face3d_split() -> tuple[Path, Path]:
    """bench/work/face3d/{train,heldout}: the fixed split as dataset folders (images symlinked)."""
    data = load_face_set(SOURCE)
    train_idx, held_idx = heldout_split(len(data))
    root = WORK / "face3d"
    folders = []
    for name, indices in (("train", train_idx), ("heldout", held_idx)):
        if (root / name).exists():
            shutil.rmtree(root / name)
        folders.append(write_face_subset(data, indices, root / name))
    return folders[0], folders[1]


def dlib_predictor():
    import importlib.util

    import dlib

    # The file's location without importing the package: its __init__ needs pkg_resources (old setuptools).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        raise SystemExit("dlib's 68-point model is missing: pip install face-recognition-models")
    folder = Path(list(spec.submodule_search_locations)[0])
    return dlib.shape_predictor(str(folder / "models" / "shape_predictor_68_face_landmarks.dat"))


def dlib_points(predictor, image: np.ndarray, box) -> np.ndarray:
    import dlib

    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = predictor(image, rect)
    xy = np.array([[p.x, p.y] for p in shape.parts()], float)
    return np.column_stack([xy, np.full(len(xy), np.nan)])  # 2D only


def row(name: str, report: dict, speed: float | None = None, note: str = "") -> list:
    yaw = report["nme_box_by_yaw"]
    return [name, report["n_images"], report["nme_box"], yaw["0-30"]["value"], yaw["30-60"]["value"],
            yaw["60-90"]["value"], report["gte"], report["cvgtce"], report.get("z_error"), speed, note]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Landmarks3DTask.default_model)
    parser.add_argument("--limit", type=int, default=None, help="only the first N held-out images (a quick check)")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                        help="mirror test-time augmentation on/off (default: as the model's options say)")
    args = parser.parse_args()

    _, held_dir = face3d_split()
    data = load_face_set(held_dir)
    if args.limit:
        data = data.subset(range(min(args.limit, len(data))))
    images = [read_image(r.image_path) for r in data.records]
    true = np.stack([r.points for r in data.records])
    yaw = np.array([np.nan if r.yaw is None else r.yaw for r in data.records])
    truth_boxes = [landmark_box(p) for p in true]
    task, model = load_model(args.model, "landmarks3d")
    if args.flip_test is not None:
        task.options.flip_test = args.flip_test
    runtime = Runtime.create()
    mean_depth = task.meta.get("mean_depth_over_box")
    results, rows = {}, []

    def report_for(pred, subset=None):
        idx = np.arange(len(true)) if subset is None else np.asarray(subset)
        return landmarks3d_report(pred[idx], true[idx], yaw[idx], True, mean_depth)

    def timed_pass(model, forward=None):
        """Predictions on the true boxes, batched faces/s and one-at-a-time faces/s (crop + network + decoding)."""
        def infer(subset, batch_size):
            return task.infer_faces(model, [images[k] for k in subset], [[truth_boxes[k]] for k in subset], runtime,
                                    batch_size=batch_size, forward=forward)

        infer(range(min(16, len(images))), 16)  # warm-up
        start = time.perf_counter()
        faces = infer(range(len(images)), 16)
        batched = len(images) / (time.perf_counter() - start)
        singles = min(32, len(images))
        start = time.perf_counter()
        for k in range(singles):
            infer([k], 1)
        return np.stack([f[0]["points"] for f in faces]), batched, singles / (time.perf_counter() - start)

    # shapekit, ground-truth boxes; torch (the runtime default), then the same model exported to ONNX
    pred, speed, speed_single = timed_pass(model)
    results["shapekit_gt_box"] = report_for(pred)
    rows.append(row("shapekit, true box", results["shapekit_gt_box"], speed, f"3D; {runtime.precision}"))
    exported = export_onnx(args.model, WORK / "face3d" / "landmarks3d.onnx")
    pred, onnx_speed, onnx_single = timed_pass(None, OnnxForward(exported))
    results["shapekit_gt_box_onnx"] = report_for(pred) | {"faces_per_s_single": onnx_single}
    rows.append(row("shapekit ONNX, true box", results["shapekit_gt_box_onnx"], onnx_speed, "3D; onnxruntime fp32"))

    detections = {}
    for detector in ("mtcnn", "dlib"):
        start = time.perf_counter()
        found = [detect_faces(image, detector) for image in images]
        det_speed = len(images) / (time.perf_counter() - start)
        boxes, hit = [], []
        for k, (faces_found, truth) in enumerate(zip(found, truth_boxes)):
            best = max((f["box"] for f in faces_found), key=lambda b: box_iou(b, truth), default=None)
            if best is not None and box_iou(best, truth) >= 0.1:
                boxes.append(best)
                hit.append(k)
        detections[detector] = (boxes, hit, det_speed)
        faces = task.infer_faces(model, [images[k] for k in hit], [[b] for b in boxes], runtime, 16,
                                 task.options.refine)
        pred = np.full_like(true, np.nan)
        pred[hit] = np.stack([f[0]["points"] for f in faces])
        key = f"shapekit_{detector}_box"
        results[key] = report_for(pred, hit) | {"n_detected": len(hit), "detector_images_per_s": det_speed}
        rows.append(row(f"shapekit, {detector} box", results[key], None,
                        f"{len(hit)}/{len(images)} detected; detector {det_speed:.1f} img/s"))

    predictor = dlib_predictor()
    start = time.perf_counter()
    pred = np.stack([dlib_points(predictor, image, box) for image, box in zip(images, truth_boxes)])
    dlib_speed = len(images) / (time.perf_counter() - start)
    results["dlib68_gt_box"] = report_for(pred)
    rows.append(row("dlib 68-pt, true box", results["dlib68_gt_box"], dlib_speed, "2D only"))
    boxes, hit, _ = detections["dlib"]
    pred = np.full_like(true, np.nan)
    pred[hit] = np.stack([dlib_points(predictor, images[k], b) for k, b in zip(hit, boxes)])
    results["dlib68_dlib_box"] = report_for(pred, hit) | {"n_detected": len(hit)}
    rows.append(row("dlib 68-pt, dlib box", results["dlib68_dlib_box"], None, f"{len(hit)} detected, 2D only"))

    unit = np.asarray(task.meta["mean_shape_in_box"])
    pred = np.zeros_like(true)
    for k, (x0, y0, x1, y1) in enumerate(truth_boxes):
        pred[k, :, :2] = [x0, y0] + unit * [x1 - x0, y1 - y0]
    pred[..., 2] = np.asarray(mean_depth)[None] * box_size(true)[:, None]
    results["constant_mean_shape"] = report_for(pred)
    rows.append(row("constant mean shape", results["constant_mean_shape"], None, "mean depth per landmark"))

    columns = ["method", "faces", "NME %", "0-30", "30-60", "60-90", "GTE %", "CVGTCE %", "z err %", "faces/s",
               "note"]
    print_table(f"AFLW2000-3D held-out images ({len(images)}, every 10th by name), shipped model {args.model.name}",
                columns, rows)
    gt = results["shapekit_gt_box"]
    console.print(f"z error {gt['z_error']:.2f} % vs {gt['z_error_mean_depth']:.2f} % for each landmark's mean "
                  f"relative depth ({gt['z_error_mean_depth'] / gt['z_error']:.2f}x lower); "
                  f"{speed:.1f} faces/s batched, {speed_single:.1f} faces/s one at a time; ONNX {onnx_speed:.1f} and "
                  f"{onnx_single:.1f}")
    ced = plot_ced({name: report["ced"] for name, report in results.items()}, REPO / "bench" / "figures" /
                   "landmarks3d_ced.png", "sqrt(box area), per image")
    console.print(f"CED curves: {ced}")
    for report in results.values():
        report.pop("per_image_nme", None)
    save_results("landmarks3d" if not args.limit else "landmarks3d-quick", {
        "data": str(SOURCE), "split": "held out: every 10th image by sorted file name (160 of the staged 1600)",
        "model": str(args.model), "flip_test": task.options.flip_test, "columns": columns, "table": rows, "faces_per_s_batched": speed,
        "faces_per_s_single": speed_single, "onnx_faces_per_s_batched": onnx_speed,
        "onnx_faces_per_s_single": onnx_single, "dlib_faces_per_s": dlib_speed,
        "nme_target_met": gt["nme_box"] <= 4.0,
        "z_error_ratio_vs_mean_depth": gt["z_error_mean_depth"] / gt["z_error"],
        "notes": "NME: mean 2D error / sqrt(w*h) of the true landmark box. GTE / CVGTCE: over the inter-ocular "
                 "distance (3D for 3D predictions, 2D for dlib; images whose 2D inter-ocular distance is under 10 % of "
                 "the box are left out). dlib's predictor follows the 2D 300-W convention (jaw on the visible "
                 "contour), AFLW2000-3D's pt3d_68 the 3D-consistent one, which penalises it on profiles.",
        "results": results})


if __name__ == "__main__":
    main()
