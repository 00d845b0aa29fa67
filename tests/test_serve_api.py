"""The web app's HTTP API (FastAPI TestClient) and the task interface it relies on (predict_image)."""

import asyncio
import json
import shutil
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _label_fixtures import MIRRORED, SWAPPED, write_mislabelled_dataset
from _serve import FakeLandmarks3D, live_server, make_workspace, photo, random_mesh_checkpoint
from shapekit.engine import load_model
from shapekit.engine.runtime import Runtime
from shapekit.io import csv_landmarks, tps
from shapekit.io.coco import read_coco_keypoints
from shapekit.io.images import read_image
from shapekit.io.landmark_dataset import load_landmark_set, split_dataset
from shapekit.serve import create_app
from shapekit.tasks import available_tasks, get_task
from shapekit.tasks.base import Task

KINDS = {"landmarks", "landmarks3d", "mask", "mesh"}


@pytest.fixture
def workspace(tmp_path, trained_run):
    return make_workspace(tmp_path / "ws", trained_run / "best.ckpt")


@pytest.fixture
def client(workspace):
    return TestClient(create_app(workspace), base_url="http://127.0.0.1")


def _strict_json(result):
    return json.loads(json.dumps(result, allow_nan=False))  # JSON has no NaN: a result must not need it


# --- the task interface ---------------------------------------------------------------------------

def test_every_task_has_a_web_kind_and_its_own_predict_image():
    for name in available_tasks():
        cls = get_task(name)
        assert cls.web_kind in KINDS, name
        assert cls.predict_image is not Task.predict_image, f"{name} does not implement predict_image"


def test_landmark_predict_image_is_the_batched_inference_path(trained_run, synthetic_split):
    task, model = load_model(trained_run / "best.ckpt")
    runtime = Runtime.create()
    image = read_image(sorted((synthetic_split[1] / "images").iterdir())[0])
    result = _strict_json(task.predict_image(model, image, runtime))
    points, conf = task.infer_images(model, [image], runtime)
    assert result["kind"] == "landmarks" and result["names"] == task.names and result["skeleton"] == []
    np.testing.assert_allclose(np.array(result["points"]), points[0], atol=1e-6)
    np.testing.assert_allclose(result["confidence"], conf[0], atol=1e-6)
    assert result["score"] == pytest.approx(float(conf[0].mean()))


def test_segment_mesh_and_regress_results_follow_the_contract(tmp_path):
    import base64
    import io

    import trimesh
    from PIL import Image

    from shapekit.config import RunConfig

    runtime = Runtime.create()
    image = read_image(photo(tmp_path / "astronaut.jpg"))
    segment = get_task("segment")
    task, model = load_model(segment.default_model)
    mask_result = _strict_json(task.predict_image(model, image, runtime))
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(mask_result["mask_png"]))))
    assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 1}
    assert mask_result["coverage"] == pytest.approx(float((mask > 0).mean()))
    assert 0.1 < mask_result["coverage"] < 0.7 and 0.5 < mask_result["score"] <= 1.0
    assert mask_result["classes"] == ["background", "object"]
    np.testing.assert_array_equal(mask, task.infer_masks(model, [image], runtime)[0])

    task, model = load_model(random_mesh_checkpoint(tmp_path / "mesh.ckpt"))
    mesh_result = _strict_json(task.predict_image(model, image, runtime))
    scene = trimesh.load(io.BytesIO(base64.b64decode(mesh_result["glb"])), file_type="glb")
    geometry = list(scene.geometry.values())[0]
    assert mesh_result["kind"] == "mesh" and mesh_result["score"] is None
    assert len(geometry.faces) == mesh_result["num_faces"] == len(task.template.faces)
    assert mesh_result["num_vertices"] == task.template.num_vertices

    regress = get_task("regress")(RunConfig(task="regress"), {"num_landmarks": 3, "landmark_names": ["a", "b", "c"],
                                                               "input_shape": [64, 48]})
    result = _strict_json(regress.predict_image(regress.build_model(pretrained=False).eval(), image, runtime))
    assert result["kind"] == "landmarks" and len(result["points"]) == 3 and result["score"] == 1.0
    assert all(-1 <= x <= image.shape[1] and -1 <= y <= image.shape[0] for x, y in result["points"])


# --- datasets, predictions, saving -------------------------------------------------------------------

def test_dataset_description_matches_the_annotation_file(client, workspace):
    info = client.get("/api/datasets/specimens").json()
    truth = load_landmark_set(workspace / "specimens")
    assert info["kind"] == "landmarks" and info["format"] == "tps" and info["y_origin"] == "bottom"
    assert info["names"] == truth.names and info["can_save"] and info["predictions"] is None
    assert [im["name"] for im in info["images"]] == [r.image_path.name for r in truth.records]
    for image, record in zip(info["images"], truth.records):
        np.testing.assert_allclose(np.array(image["points"]), record.points, atol=1e-5)
        assert (image["width"], image["height"]) == (record.width, record.height)
        assert image["score"] is None and client.get(f"/api/files/{image['file']}").status_code == 200
    listed = {d["path"]: d["kind"] for d in client.get("/api/datasets").json()}
    assert listed == {"specimens": "landmarks"}
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert "models/landmarks.ckpt" in models and models["shipped:segment"]["task"] == "segment"


def test_predicting_a_dataset_stores_scores_beside_it(client, workspace):
    answer = client.post("/api/datasets/specimens/predict", json={"model": "models/landmarks.ckpt"})
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    stored = json.loads((workspace / "specimens" / "shapekit-predictions.json").read_text())
    assert summary["n_images"] == 6 and summary["kind"] == "landmarks" and stored["model"] == "models/landmarks.ckpt"
    info = client.get("/api/datasets/specimens").json()
    for image in info["images"]:
        result = stored["images"][image["name"]]
        assert image["predicted"] and image["score"] == pytest.approx(np.mean(result["confidence"]))
        assert client.get(f"/api/datasets/specimens/predictions/{image['name']}").json() == result
    assert info["predictions"]["model"] == "models/landmarks.ckpt"
    # A loaded model is cached: the same object serves the next request.
    cache = client.app.state.models
    assert cache.get("models/landmarks.ckpt") is cache.get("models/landmarks.ckpt")


def _backups(folder, name):
    return sorted(folder.glob(f"{name}.bak-*"))


def test_saving_tps_moves_one_landmark_and_keeps_every_other_line(client, workspace):
    path = workspace / "specimens" / "landmarks.tps"
    before = path.read_text()
    info = client.get("/api/datasets/specimens").json()
    image = info["images"][2]
    points = [list(p) for p in image["points"]]
    points[4] = [points[4][0] + 7.25, points[4][1] - 3.5]  # image coordinates: 3.5 px up
    answer = client.post("/api/datasets/specimens/annotations", json={"images": [{"name": image["name"], "points": points}]})
    assert answer.status_code == 200, answer.text
    old, new = tps.read_tps(_backups(path.parent, "landmarks.tps")[0]), tps.read_tps(path)
    assert _backups(path.parent, "landmarks.tps")[0].read_text() == before
    assert answer.json()["file"] == "specimens/landmarks.tps" and answer.json()["backup"].startswith("specimens/landmarks.tps.bak-")
    for k, (a, b) in enumerate(zip(old, new)):
        assert (a.id, a.image, a.scale, a.comment) == (b.id, b.image, b.scale, b.comment)
        expected = a.points.copy()
        if k == 2:
            expected[4] += [7.25, 3.5]  # TPS measures y from the bottom
        np.testing.assert_allclose(b.points, expected, atol=1e-4)


def test_saving_coco_and_csv_datasets(client, workspace):
    truth = load_landmark_set(workspace / "specimens")
    names = [r.image_path.name for r in truth.records]
    from shapekit.io.landmark_dataset import write_landmarks

    for fmt, file_name in (("coco", "annotations.json"), ("csv", "landmarks.csv")):
        folder = workspace / fmt
        shutil.copytree(workspace / "specimens" / "images", folder / "images")
        write_landmarks(folder / file_name, fmt, names, np.stack([r.points for r in truth.records]), truth.names,
                        heights=[r.height for r in truth.records], widths=[r.width for r in truth.records])
        points = truth.records[1].points.tolist()
        points[0] = [points[0][0] - 4, points[0][1] + 2]
        points[6] = None
        answer = client.post(f"/api/datasets/{fmt}/annotations", json={"images": [{"name": names[1], "points": points}]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["format"] == fmt and len(_backups(folder, file_name)) == 1
        reread = load_landmark_set(folder)
        np.testing.assert_allclose(reread.records[1].points[0], truth.records[1].points[0] + [-4, 2], atol=1e-3)
        assert np.isnan(reread.records[1].points[6]).all()
        for k in (0, 2, 3, 4, 5):
            np.testing.assert_allclose(reread.records[k].points, truth.records[k].points, atol=1e-3)
    coco = read_coco_keypoints(workspace / "coco" / "annotations.json")
    assert coco.annotations[1]["num_keypoints"] == 6 and coco.annotations[1]["keypoints"][-1] == 0
    assert csv_landmarks.read_csv(workspace / "csv" / "landmarks.csv")[0] == names
    # Saving keeps a dataset's own format; converting is what export is for.
    answer = client.post("/api/datasets/csv/annotations", json={"format": "tps", "images": [
        {"name": names[1], "points": truth.records[1].points.tolist()}]})
    assert answer.status_code == 400 and "export" in answer.json()["error"]


def test_a_folder_of_images_gets_a_new_annotation_file(client, workspace):
    folder = workspace / "fresh" / "images"
    folder.mkdir(parents=True)
    shutil.copy2(workspace / "specimens" / "images" / "specimen_0000.png", folder)
    answer = client.post("/api/datasets/fresh/annotations", json={
        "format": "tps", "names": ["a", "b"], "images": [{"name": "specimen_0000.png", "points": [[10, 20], [30.5, 40]]}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["backup"] is None
    spec = tps.read_tps(workspace / "fresh" / "landmarks.tps")[0]
    np.testing.assert_allclose(spec.points, [[10, 128 - 20], [30.5, 128 - 40]])


@pytest.mark.parametrize("change, words", [
    (lambda im: {"name": im["name"], "points": im["points"][:-1]}, "landmarks sent"),
    (lambda im: {"name": im["name"], "points": [[500.0, 1.0]] + im["points"][1:]}, "outside"),
    (lambda im: {"name": "missing.png", "points": im["points"]}, "no such image"),
    (lambda im: {"name": "../specimens/images/" + im["name"], "points": im["points"]}, "file name"),
    (lambda im: {"name": im["name"], "points": [["a", 1]] + im["points"][1:]}, "points"),
])
def test_bad_corrections_are_refused_and_nothing_is_written(client, workspace, change, words):
    path = workspace / "specimens" / "landmarks.tps"
    before = path.read_text()
    image = client.get("/api/datasets/specimens").json()["images"][0]
    answer = client.post("/api/datasets/specimens/annotations", json={"images": [change(image)]})
    assert 400 <= answer.status_code < 500 and words in answer.json()["error"], answer.text
    assert path.read_text() == before and not _backups(path.parent, "landmarks.tps")


def test_export_converts_without_writing(client, workspace):
    from _serve import snapshot

    before = snapshot(workspace)
    body = {"names": ["a", "b"], "y_origin": "bottom", "skeleton": [[0, 1]],
            "images": [{"name": "x.png", "width": 100, "height": 50, "points": [[10, 5], None]}]}
    files = {}
    for fmt in ("tps", "coco", "csv"):
        answer = client.post("/api/export", json={**body, "format": fmt})
        assert answer.status_code == 200, answer.text
        files[fmt] = answer.content.decode()
        assert "attachment" in answer.headers["content-disposition"]
    assert files["tps"].splitlines()[:3] == ["LM=2", "10.00 45.00", "NA NA"]
    coco = json.loads(files["coco"])
    assert coco["annotations"][0]["keypoints"] == [10, 5, 2, 0, 0, 0] and coco["categories"][0]["skeleton"] == [[0, 1]]
    assert files["csv"].splitlines() == ["image,a_x,a_y,b_x,b_y", "x.png,10.000,5.000,,"]
    assert snapshot(workspace) == before


def test_page_openapi_and_errors_are_json(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="canvas"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/vendor/three.module.js").status_code == 200  # vendored by `make vendor`
    schema = client.get("/openapi.json").json()
    for route in ("/api/files/{path}", "/api/datasets/{path}", "/api/predict", "/api/datasets/{path}/predict",
                  "/api/datasets/{path}/annotations", "/api/export", "/api/models", "/api/tasks"):
        assert route in schema["paths"], route
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    kinds = {t["name"]: t["web_kind"] for t in client.get("/api/tasks").json()}
    assert kinds["landmarks"] == "landmarks" and kinds["segment"] == "mask" and kinds["mesh"] == "mesh"


def test_inference_runs_off_the_event_loop(workspace, tmp_path):
    """While one slow prediction runs, the server still answers other requests at once."""
    import httpx

    class Slow(FakeLandmarks3D):
        def predict_image(self, model, image, runtime, **options):
            time.sleep(1.5)
            return super().predict_image(model, image, runtime, **options)

    app = create_app(workspace)
    app.state.models.register("test:slow", Slow(), None)
    upload = photo(tmp_path / "a.jpg").read_bytes()

    async def scenario(base):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            slow = asyncio.create_task(http.post("/api/predict", data={"model": "test:slow"},
                                                 files={"file": ("a.jpg", upload, "image/jpeg")}))
            await asyncio.sleep(0.3)
            start = time.perf_counter()
            health = await http.get("/api/health")
            quick = time.perf_counter() - start
            result = await slow
            return health.status_code, quick, result

    with live_server(app) as base:
        status, quick, result = asyncio.run(scenario(base))
    assert status == 200 and quick < 0.5, quick
    assert result.status_code == 200 and result.json()["kind"] == "landmarks3d"
    assert result.json()["image"] == {"name": "a.jpg", "width": 512, "height": 512}


def test_split_dataset_images_symlinked_inside_the_root_are_served(client, workspace):
    split_dataset(workspace / "specimens", workspace / "split", test_fraction=0.5, seed=0)
    info = client.get("/api/datasets/split/test").json()
    assert len(info["images"]) == 3 and not info["warnings"]
    assert client.get(f"/api/files/{info['images'][0]['file']}").status_code == 200


def test_serve_command_checks_its_root(tmp_path, capsys):
    from shapekit.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["serve", "--root", str(tmp_path / "missing")])
    assert stop.value.code == 2 and "--root is not a folder" in capsys.readouterr().err


def test_an_onnx_export_under_the_root_predicts_through_onnxruntime(client, workspace):
    from shapekit.engine.onnx import OnnxForward, export_onnx

    onnx_file = export_onnx(workspace / "models" / "landmarks.ckpt", workspace / "models" / "landmarks.onnx")
    image = {"path": "specimens/images/specimen_0003.png"}
    by_onnx = client.post("/api/predict", data={**image, "model": "models/landmarks.onnx"}).json()
    by_torch = client.post("/api/predict", data={**image, "model": "models/landmarks.ckpt"}).json()
    assert by_onnx["kind"] == by_torch["kind"] == "landmarks" and by_onnx["image"]["name"] == "specimen_0003.png"
    task, _ = load_model(workspace / "models" / "landmarks.ckpt")
    direct = task.predict_image(None, read_image(workspace / image["path"]), Runtime.create(),
                                forward=OnnxForward(onnx_file))
    np.testing.assert_allclose(by_onnx["points"], direct["points"], atol=1e-4)
    distance = np.linalg.norm(np.array(by_onnx["points"]) - np.array(by_torch["points"]), axis=1)
    assert np.median(distance) < 1.5  # fp32 onnxruntime vs bf16 torch


def test_an_unannotated_image_is_appended_to_the_tps_file(client, workspace):
    folder = workspace / "specimens"
    shutil.copy2(folder / "images" / "specimen_0001.png", folder / "images" / "extra.png")
    info = client.get("/api/datasets/specimens").json()
    extra = next(im for im in info["images"] if im["name"] == "extra.png")
    assert extra["points"] is None and len(info["images"]) == 7
    points = [[10.0 + k, 20.0 + k] for k in range(7)]
    assert client.post("/api/datasets/specimens/annotations",
                       json={"images": [{"name": "extra.png", "points": points}]}).status_code == 200
    specimens = tps.read_tps(folder / "landmarks.tps")
    assert len(specimens) == 7 and specimens[-1].image == "extra.png" and specimens[-1].id == "extra"
    np.testing.assert_allclose(specimens[-1].points, [[10 + k, 128 - 20 - k] for k in range(7)])
    reread = {im["name"]: im["points"] for im in client.get("/api/datasets/specimens").json()["images"]}
    assert reread["extra.png"] == points


def test_a_face_dataset_is_shown_and_corrected_in_its_own_file(tmp_path):
    from conftest import data_dir

    from shapekit.io.faces import load_face_set, write_face_subset

    source = load_face_set(data_dir("aflw2000-3d"))
    folder = write_face_subset(source, [0, 1, 2], tmp_path / "ws" / "faces")
    for link in (folder / "images").iterdir():  # copies: the app shows no file that leads outside its root
        target = link.resolve()
        link.unlink()
        shutil.copyfile(target, link)
    client = TestClient(create_app(tmp_path / "ws"), base_url="http://127.0.0.1")
    assert {d["path"]: d["kind"] for d in client.get("/api/datasets").json()}["faces"] == "landmarks"
    info = client.get("/api/datasets/faces").json()
    assert info["format"] == "ibug68" and len(info["names"]) == 68 and info["can_save"]
    before = load_face_set(folder)
    image = info["images"][1]
    record = next(r for r in before.records if r.image_path.name == image["name"])
    np.testing.assert_allclose(np.array(image["points"]), record.points[:, :2], atol=1e-5)
    points = [list(p) for p in image["points"]]
    points[30] = [points[30][0] + 4.5, points[30][1] - 2.0]  # the nose tip
    answer = client.post("/api/datasets/faces/annotations", json={"images": [{"name": image["name"], "points": points}]})
    assert answer.status_code == 200, answer.text
    after = load_face_set(folder)
    assert len(_backups(folder, "annotations.json")) == 1
    for old, new in zip(before.records, after.records):
        expected = old.points.copy()
        if old.image_path.name == image["name"]:
            expected[30, :2] += [4.5, -2.0]
        np.testing.assert_allclose(new.points, expected, atol=1e-3)  # z and every other face kept
    assert after.raw["pose_pitch_yaw_roll_deg"] == before.raw["pose_pitch_yaw_roll_deg"]
    # the wrong number of points is refused, and the file stays as it was
    saved = (folder / "annotations.json").read_text()
    answer = client.post("/api/datasets/faces/annotations", json={"images": [{"name": image["name"], "points": points[:5]}]})
    assert answer.status_code == 400 and "68" in answer.json()["error"], answer.text
    assert (folder / "annotations.json").read_text() == saved and len(_backups(folder, "annotations.json")) == 1


def test_test_time_views_are_offered_per_task_and_applied(client, workspace):
    from shapekit.serve.models import model_entry

    (workspace / "models" / "config.yaml").write_text("task: landmarks\n")
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert models["models/landmarks.ckpt"]["task"] == "landmarks"
    assert models["models/landmarks.ckpt"]["test_time"] == ["off", "votes", "full"]
    assert models["shipped:segment"]["test_time"] == ["off", "full"]
    assert model_entry("a.ckpt", "mesh", False)["test_time"] == ["off"]
    assert model_entry("a.onnx", None, False)["test_time"] == ["off", "votes", "full"]  # task known once loaded
    # The crop votes the client asks for are the task's own crop votes, and they move the points.
    image = {"path": "specimens/images/specimen_0003.png", "model": "models/landmarks.ckpt"}
    plain = client.post("/api/predict", data=image).json()
    voted = client.post("/api/predict", data={**image, "test_time": "votes"}).json()
    assert plain["test_time"] == "off" and voted["test_time"] == "votes"
    task, model = load_model(workspace / "models" / "landmarks.ckpt")
    direct = task.predict_image(model, read_image(workspace / image["path"]), Runtime.create(),
                                tta=task.test_time_augmentation().crop_votes_only())
    np.testing.assert_allclose(voted["points"], direct["points"], atol=0.05)
    assert np.abs(np.array(voted["points"]) - np.array(plain["points"])).max() > 0.05
    # A whole dataset with every view: the mode is stored beside the predictions.
    everything = {"model": "models/landmarks.ckpt", "test_time": "full"}
    answer = client.post("/api/datasets/specimens/predict", json=everything)
    assert answer.status_code == 200 and answer.json()["test_time"] == "full", answer.text
    assert json.loads((workspace / "specimens" / "shapekit-predictions.json").read_text())["test_time"] == "full"
    # Views a model does not have, and unknown modes, are refused in one line.
    refused = client.post("/api/predict", data={**image, "model": "shipped:segment", "test_time": "votes"})
    assert refused.status_code == 400 and "no refinement stage" in refused.json()["error"]
    unknown = client.post("/api/predict", data={**image, "test_time": "sideways"})
    assert unknown.status_code == 400 and "expected one of off, votes, full" in unknown.json()["error"]
    invalid = client.post("/api/datasets/specimens/predict", json={**everything, "test_time": "x"})
    assert invalid.status_code == 422


def test_the_label_check_flags_images_and_a_correction_clears_its_flag(client, workspace):
    """The page lists the label check's findings per image; once a swap is corrected and saved, the check
    run on the stored file no longer flags that image."""
    write_mislabelled_dataset(workspace / "mislabelled")
    info = client.get("/api/datasets/mislabelled").json()
    checks = {im["name"]: im["check"] for im in info["images"]}
    flagged = {name for name, check in checks.items() if check}
    assert flagged == {"s03.png", "s07.png", "s11.png", "s15.png"}
    assert info["label_check"] == {"n_checked": 40, "n_flagged": 4, "threshold": 3.5}
    assert checks["s03.png"]["issue"] == "order" and checks["s03.png"]["landmarks"] == [2, 5]
    assert "mirror" in checks[f"s{MIRRORED:02d}.png"]["message"]

    swapped = next(im for im in info["images"] if im["name"] == f"s{SWAPPED:02d}.png")
    points = [list(p) for p in swapped["points"]]
    points[1], points[4] = points[4], points[1]
    answer = client.post("/api/datasets/mislabelled/annotations",
                         json={"images": [{"name": swapped["name"], "points": points}]})
    assert answer.status_code == 200, answer.text
    after = client.get("/api/datasets/mislabelled").json()
    assert after["label_check"]["n_flagged"] == 3
    assert next(im for im in after["images"] if im["name"] == "s03.png")["check"] is None
