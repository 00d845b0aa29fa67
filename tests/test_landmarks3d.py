"""3D face landmarks: metrics, the face dataset format, crops, the stage-wise schedule, a tiny training run,
and the shipped model on photos without a face, in grayscale and with two faces."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import data_dir

from shapekit import metrics
from shapekit.cli import main
from shapekit.io.faces import IBUG68_FLIP_PAIRS, heldout_split, load_face_set, write_face_subset


@pytest.fixture(scope="module")
def aflw():
    return load_face_set(data_dir("aflw2000-3d"))


@pytest.fixture(scope="module")
def tiny_aflw(aflw, tmp_path_factory):
    return write_face_subset(aflw, list(range(0, 80, 10)), tmp_path_factory.mktemp("aflw") / "tiny")


@pytest.fixture(scope="module")
def shipped():
    from shapekit.engine import Runtime, load_model
    from shapekit.tasks.landmarks3d import Landmarks3DTask

    task, model = load_model(Landmarks3DTask.default_model)
    return task, model, Runtime.create("cpu", "32")  # fp32: symmetry and ONNX parity are checked to 0.05 px


# --- metrics ---------------------------------------------------------------------------------------

def test_similarity_alignment_recovers_a_similarity_and_cvgtce_ignores_it():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(68, 3)) * 40 + 200
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    moved = (truth - truth.mean(0)) @ rotation.T * 1.7 + [30, -12, 5]
    assert np.allclose(metrics.similarity_align(moved, truth), truth, atol=1e-8)
    assert metrics.cvgtce(moved[None], truth[None])[0] == pytest.approx(0, abs=1e-9)
    assert metrics.gte(moved[None], truth[None])[0] > 0.5  # GTE does not forgive the pose change
    noisy = truth + rng.normal(size=truth.shape)
    assert 0 < metrics.cvgtce(noisy[None], truth[None])[0] <= metrics.gte(noisy[None], truth[None])[0] + 1e-12


def test_nme_box_depth_offset_and_yaw_bins():
    truth = np.zeros((2, 68, 3))
    truth[:, :, 0] = np.linspace(0, 100, 68)
    truth[:, :, 1] = np.linspace(0, 25, 68)  # box 100 x 25: sqrt area 50
    truth[:, :, 2] = np.linspace(-10, 10, 68) + 500  # arbitrary per-image depth offset
    pred = truth.copy()
    pred[0, :, 0] += 5
    pred[:, :, 2] -= 500  # the offset alone is no error
    assert metrics.box_size(truth) == pytest.approx([50, 50])
    nme = metrics.nme_per_image(pred, truth, metrics.box_size(truth))
    assert nme == pytest.approx([0.1, 0.0])
    errors = metrics.axis_errors(pred, truth, metrics.box_size(truth))
    assert errors["z"] == pytest.approx([0, 0]) and errors["x"] == pytest.approx([0.1, 0])
    bins = metrics.by_yaw(np.array([1.0, 2.0, 3.0, 4.0]), np.array([10, -45, 90, np.nan]))
    assert bins["0-30"] == {"n": 1, "value": 1.0} and bins["30-60"]["value"] == 2.0 and bins["60-90"]["value"] == 3.0


def test_gte_is_guarded_against_tiny_inter_ocular_distances():
    truth = np.zeros((1, 68, 2))
    truth[0, :, 0] = np.linspace(0, 100, 68)
    truth[0, :, 1] = np.linspace(0, 100, 68) ** 0.5 * 10
    truth[0, 45] = truth[0, 36] + 0.5  # a profile face in 2D: the eye corners nearly coincide
    assert np.isnan(metrics.gte(truth + 1, truth)[0])


# --- data ------------------------------------------------------------------------------------------

def test_face_dataset_split_and_flip_pairs(aflw, tiny_aflw):
    assert len(aflw) == 1600 and aflw.has_depth
    assert sum(r.yaw is None for r in aflw.records) > 0  # the broken Pose_Para values carry no yaw
    train, held = heldout_split(len(aflw))
    assert len(held) == 160 and not set(train) & set(held) and heldout_split(len(aflw)) == (train, held)
    pairs = dict(IBUG68_FLIP_PAIRS) | {j: i for i, j in IBUG68_FLIP_PAIRS}
    assert len(pairs) == 2 * len(IBUG68_FLIP_PAIRS) and all(pairs[pairs[k]] == k for k in pairs)
    small = load_face_set(tiny_aflw)
    assert [r.image_path.name for r in small.records] == [aflw.records[i].image_path.name for i in range(0, 80, 10)]
    assert np.allclose(small.records[1].points, aflw.records[10].points)
    infants = load_face_set(data_dir("infanface"))
    assert not infants.has_depth and all(r.yaw is None for r in infants.records[:5])


def test_training_crops_follow_the_face_through_flips(aflw):
    from shapekit.tasks.landmarks3d import FaceCrops, Landmarks3DOptions

    frontal = aflw.subset([i for i, r in enumerate(aflw.records) if r.yaw is not None and abs(r.yaw) < 10][:4])
    plain = FaceCrops(frontal, 96, Landmarks3DOptions(), train=False)[0]
    assert plain["visible"].all() and plain["has_depth"]
    assert abs(float(plain["depth"].mean())) < 1e-5  # relative depth: zero mean per face
    np.random.seed(0)
    crops = FaceCrops(frontal, 96, Landmarks3DOptions(rotate=0.0), train=True)
    for k in range(12):
        sample = crops[k % len(crops)]
        pts = sample["points"].numpy()
        # After a mirror flip the points are re-ordered: the right eye's outer corner stays on the image left.
        assert pts[36, 0] < pts[45, 0] and pts[0, 0] < pts[16, 0]
        assert sample["image"].shape == (3, 96, 96)


def test_schedule_stages_follow_the_epoch():
    from shapekit.config import RunConfig
    from shapekit.tasks.landmarks3d import Landmarks3DTask

    task = Landmarks3DTask(RunConfig(task="landmarks3d", options={"schedule": {"regress_from": 0.2,
                                                                               "joint_from": 0.6}}))
    stages = []
    for epoch in range(10):
        task.set_epoch(epoch, 10)
        stages.append(task.stage)
    assert stages == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3]


def test_tiny_training_run_goes_through_all_stages(tiny_aflw, tmp_path):
    out = tmp_path / "run"
    main(["train", "--task", "landmarks3d", "--data", str(tiny_aflw), "--out", str(out), "--epochs", "3",
          "--input-size", "64", "--batch-size", "4", "--val-fraction", "0.25", "--encoder-weights", "none",
          "--opt", "schedule.regress_from=0.3", "--opt", "schedule.joint_from=0.6"])
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 3
    assert not rows[0]["train_regression"] and rows[1]["train_regression"]  # stage 1 trains detection only
    assert all(float(r["val_z_error_pct"]) > 0 for r in rows)
    assert (out / "best.ckpt").is_file()


# --- the shipped model -------------------------------------------------------------------------------

def test_shipped_model_on_held_out_faces(tmp_path, aflw):
    from shapekit.io.faces import heldout_split

    _, held = heldout_split(len(aflw))
    folder = write_face_subset(aflw, held[:12], tmp_path / "held")
    report_path = tmp_path / "report.json"
    main(["evaluate", "--task", "landmarks3d", "--data", str(folder), "--json", str(report_path)])
    report = json.loads(report_path.read_text())
    for key in ("n_images", "nme_box", "nme_box_by_yaw", "gte", "cvgtce", "z_error"):
        assert key in report
    assert report["n_images"] == 12
    # better than the constant baseline: the mean training shape placed in each true box
    from shapekit.engine import read_checkpoint
    from shapekit.tasks.landmarks3d import Landmarks3DTask, landmark_box, landmarks3d_report

    meta = read_checkpoint(Landmarks3DTask.default_model)["shapekit"]["meta"]
    true = np.stack([r.points for r in load_face_set(folder).records])
    boxes = np.stack([landmark_box(p) for p in true])
    constant = true.copy()
    constant[..., :2] = boxes[:, None, :2] + np.asarray(meta["mean_shape_in_box"]) * (boxes[:, None, 2:] - boxes[:, None, :2])
    baseline = landmarks3d_report(constant, true, np.full(len(true), np.nan), False)
    assert report["nme_box"] < baseline["nme_box"]
    assert report["z_error"] < report["z_error_mean_depth"]


def test_two_faces_grayscale_and_no_face(shipped):
    from skimage import data

    task, model, runtime = shipped
    face = data.astronaut()[:260, 120:340]
    pair = np.concatenate([face, face[:, ::-1]], axis=1)
    result = task.predict_image(model, pair, runtime)
    assert result["kind"] == "landmarks3d" and len(result["instances"]) == 2 and result["message"] is None
    centres = sorted((inst["box"][0] + inst["box"][2]) / 2 for inst in result["instances"])
    assert centres[0] < face.shape[1] < centres[1]  # one face in each half
    for inst in result["instances"]:
        points = np.array(inst["points"], float)
        x0, y0, x1, y1 = inst["box"]
        side = max(x1 - x0, y1 - y0)
        inside = ((points[:, 0] > x0 - 0.3 * side) & (points[:, 0] < x1 + 0.3 * side) &
                  (points[:, 1] > y0 - 0.3 * side) & (points[:, 1] < y1 + 0.3 * side))
        assert inside.mean() > 0.95 and points.shape == (68, 3)
        assert np.mean(points[[36, 39], 0]) < np.mean(points[[42, 45], 0])  # eyes in the right order
    gray = np.repeat(data.astronaut().mean(2, keepdims=True).astype(np.uint8), 3, 2)
    assert len(task.predict_image(model, gray, runtime)["instances"]) == 1
    assert len(task.predict_image(model, data.astronaut()[..., 0], runtime)["instances"]) == 1  # one channel
    empty = task.predict_image(model, np.full((240, 320, 3), 90, np.uint8), runtime)
    assert empty["instances"] == [] and "no face" in empty["message"]


def test_predict_cli_writes_every_output(tmp_path, capsys):
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo, quality=92)
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(blank)
    out = tmp_path / "out"
    main(["predict", str(photo), str(blank), "--task", "landmarks3d", "--out", str(out)])
    result = json.loads((out / "landmarks3d.json").read_text())
    by_name = {entry["image"]: entry for entry in result["images"]}
    assert len(by_name["astronaut.jpg"]["faces"]) == 1 and by_name["wall.png"]["faces"] == []
    assert "no face" in by_name["wall.png"]["message"] and "no face" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "landmarks3d.csv")))
    assert len(rows) == 68 and rows[0]["z"] != ""
    assert (out / "ply" / "astronaut_face0.ply").read_bytes().startswith(b"ply")
    assert (out / "overlays" / "astronaut.png").is_file() and (out / "views3d" / "astronaut_face0.png").is_file()
    # a user-given box replaces the detector
    main(["predict", str(photo), "--task", "landmarks3d", "--out", str(tmp_path / "boxed"), "--box", "170,50,290,200"])
    boxed = json.loads((tmp_path / "boxed" / "landmarks3d.json").read_text())["images"][0]["faces"][0]
    assert boxed["box"] == [170, 50, 290, 200]
    points = np.array(boxed["points"])
    assert 150 < points[:, 0].mean() < 310 and 30 < points[:, 1].mean() < 220


def test_web_api_serves_the_shipped_model(tmp_path):
    import io

    from fastapi.testclient import TestClient
    from PIL import Image
    from skimage import data

    from shapekit.serve import create_app

    (tmp_path / "ws").mkdir()
    client = TestClient(create_app(tmp_path / "ws"), base_url="http://127.0.0.1")
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).convert("L").save(buffer, format="PNG")  # a grayscale upload
    answer = client.post("/api/predict", data={"model": "shipped:landmarks3d"},
                         files={"file": ("astronaut.png", buffer.getvalue(), "image/png")})
    assert answer.status_code == 200, answer.text
    result = json.loads(answer.text)
    assert result["kind"] == "landmarks3d" and len(result["names"]) == 68 and result["message"] is None
    (face,) = result["instances"]
    assert len(face["box"]) == 4 and len(face["points"]) == 68 and all(len(p) == 3 for p in face["points"])
    assert 0 < face["score"] <= 1 and result["image"]["width"] == 512


def test_mirror_test_time_augmentation_is_mirror_symmetric(shipped, aflw):
    from shapekit.io.images import read_image
    from shapekit.tasks.landmarks3d import landmark_box, mirror_order

    task, model, runtime = shipped
    record = aflw.records[3]
    image = read_image(record.image_path)
    width = image.shape[1]
    x0, y0, x1, y1 = landmark_box(record.points)
    mirrored_box = [width - 1 - x1, y0, width - 1 - x0, y1]
    options = task.options.model_copy()
    try:
        task.options.flip_test = True
        plain = task.infer_faces(model, [image], [[[x0, y0, x1, y1]]], runtime)[0][0]["points"]
        flipped = task.infer_faces(model, [image[:, ::-1].copy()], [[mirrored_box]], runtime)[0][0]["points"]
    finally:
        task.options = options
    back = flipped[mirror_order()]
    back[:, 0] = width - 1 - back[:, 0]
    assert np.abs(back - plain).max() < 0.05  # the averaged prediction does not depend on the mirroring
    assert np.abs(plain[:, :2] - record.points[:, :2]).mean() < 0.1 * (x1 - x0)


def test_onnx_export_predicts_as_the_torch_model(tmp_path, shipped, aflw, capsys):
    from shapekit.engine.onnx import load_predictor
    from shapekit.io.images import read_image
    from shapekit.tasks.landmarks3d import Landmarks3DTask, landmark_box

    exported = tmp_path / "face.onnx"
    main(["export", "--model", str(Landmarks3DTask.default_model), "--out", str(exported)])
    onnx_task, none, forward = load_predictor(exported, "onnx", "landmarks3d")
    assert none is None and onnx_task.name == "landmarks3d"
    task, model, runtime = shipped
    records = aflw.records[:3]
    images = [read_image(r.image_path) for r in records]
    boxes = [[landmark_box(r.points)] for r in records]
    torch_points = [f[0]["points"] for f in task.infer_faces(model, images, boxes, runtime)]
    onnx_points = [f[0]["points"] for f in onnx_task.infer_faces(None, images, boxes, runtime, forward=forward)]
    for a, b in zip(torch_points, onnx_points):
        assert np.abs(a - b).max() < 0.05  # fp32 both: the same points and depths
    # the same through the CLI, from the .onnx file alone
    main(["predict", str(records[0].image_path), "--model", str(exported), "--out", str(tmp_path / "pred"),
          "--box", ",".join(f"{v:.1f}" for v in boxes[0][0])])
    face = json.loads((tmp_path / "pred" / "landmarks3d.json").read_text())["images"][0]["faces"][0]
    side = boxes[0][0][2] - boxes[0][0][0]
    # close, not equal: predict re-crops around its first prediction (a user box is no landmark box)
    assert np.abs(np.array(face["points"], float) - onnx_points[0])[:, :2].mean() < 0.03 * side
    for argv, message in (
            (["export", "--model", str(Landmarks3DTask.default_model), "--out", str(tmp_path / "q.onnx"), "--int8",
              "--calibration", str(records[0].image_path)], "int8 export is not available"),
            # its test-time augmentation (the mirrored crop) is built in
            (["predict", str(records[0].image_path), "--task", "landmarks3d", "--tta", "--out", str(tmp_path / "t")],
             "flip_test")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()
