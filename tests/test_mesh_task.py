"""Mesh task end to end on a tiny generated multi-view set: train through the renderer, evaluate, predict."""

import json

import numpy as np
import pytest
import torch
import trimesh

from shapekit.cli import main


@pytest.fixture(scope="module")
def multiview_data(tmp_path_factory):
    from shapekit.multiview_gen import make_multiview

    root = tmp_path_factory.mktemp("mesh")
    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.vertices *= [1.0, 0.45, 0.5]
    mesh.visual.vertex_colors = np.tile([200, 60, 40, 255], (len(mesh.vertices), 1))
    mesh.export(root / "pod.ply")
    make_multiview([root / "pod.ply"], root / "data", views=8, variants=7, size=64, seed=3)
    return root / "data"


def test_mesh_training_learns_silhouettes_and_exports(multiview_data, tmp_path):
    run = tmp_path / "run"
    main(["train", "--task", "mesh", "--data", str(multiview_data), "--out", str(run), "--epochs", "6",
          "--input-size", "64", "--batch-size", "2", "--val-fraction", "0.25", "--lr", "0.001",
          "--opt", "template_level=2", "--opt", "render_size=32", "--opt", "views_per_step=4",
          "--opt", "weights.perceptual=0"])
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "loss_curves.png", "val_meshes.png"):
        assert (run / name).is_file(), name
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    iou = [float(r.split(",")[header.index("val_iou")]) for r in rows[1:]]
    assert max(iou[1:]) > iou[0] and max(iou) > 0.6, iou

    main(["evaluate", "--model", str(run / "best.ckpt"), "--data", str(multiview_data), "--json",
          str(tmp_path / "m.json")])
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["n_objects"] == 8 and "chamfer_mean" in report and report["iou_mean"] > 0.6

    view = multiview_data / "pod_000" / "view_000.png"
    main(["predict", "--model", str(run / "best.ckpt"), str(view), "--out", str(tmp_path / "pred")])
    folder = tmp_path / "pred" / "view_000"
    for name in ("view_000.obj", "view_000.mtl", "view_000.png", "view_000.glb", "turntable.png"):
        assert (folder / name).is_file(), name
    assert "Kd 1 1 1" in (folder / "view_000.mtl").read_text()
    scene = trimesh.load(folder / "view_000.glb")
    geometry = list(scene.geometry.values())[0]
    assert geometry.visual.material.baseColorTexture is not None
    assert list(geometry.visual.material.baseColorFactor[:3]) == [255, 255, 255]
    meta = torch.load(run / "best.ckpt", weights_only=False)["shapekit"]["meta"]
    assert len(geometry.faces) == len(meta["template"]["faces"])


def test_coarse_to_fine_refinement_starts_from_the_coarse_shape(multiview_data, tmp_path):
    from shapekit.engine import load_model

    coarse = tmp_path / "coarse"
    main(["train", "--task", "mesh", "--data", str(multiview_data), "--out", str(coarse), "--epochs", "2",
          "--input-size", "64", "--batch-size", "2", "--lr", "0.002", "--opt", "template_level=1",
          "--opt", "render_size=32", "--opt", "views_per_step=3", "--opt", "weights.perceptual=0"])
    fine = tmp_path / "fine"
    main(["train", "--task", "mesh", "--data", str(multiview_data), "--out", str(fine), "--epochs", "1",
          "--input-size", "64", "--batch-size", "2", "--lr", "1e-9", "--init-from", str(coarse / "best.ckpt"),
          "--opt", "refine=true", "--opt", "render_size=32", "--opt", "views_per_step=3",
          "--opt", "weights.perceptual=0"])
    from shapekit.engine.trainer import _init_from

    task_c, model_c = load_model(coarse / "best.ckpt")
    task_f, _ = load_model(fine / "last.ckpt")
    assert task_f.template.num_vertices > task_c.template.num_vertices
    # The fine run's starting point: its model initialised from the coarse checkpoint, before any
    # step (training itself moves BatchNorm statistics even at a vanishing learning rate).
    start = task_f.build_model(pretrained=False)
    _init_from(task_f, start, coarse / "best.ckpt", None)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        verts_c = task_c.vertices(model_c.eval()(image)["offsets"])[0]
        verts_f = task_f.vertices(start.eval()(image)["offsets"])[0]
    # The refined mesh's original vertices sit where the coarse mesh put them.
    count = task_c.template.num_vertices
    assert (verts_f[:count] - verts_c).abs().max() < 1e-3


def test_predict_without_a_model_names_the_option(tmp_path, monkeypatch, capsys):
    """The shoe model is built by tools/ship_mesh_model.py, not shipped in the repository: say what to give."""
    from shapekit.tasks.mesh import MeshTask

    monkeypatch.setattr(MeshTask, "default_model", tmp_path / "absent.ckpt")
    image = tmp_path / "side.png"
    image.write_bytes(b"")
    with pytest.raises(SystemExit):
        main(["predict", "--task", "mesh", str(image), "--out", str(tmp_path / "pred")])
    err = capsys.readouterr().err.strip()
    assert "--model" in err and "mesh" in err and len(err.splitlines()) == 1, err
