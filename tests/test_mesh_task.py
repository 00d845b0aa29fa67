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


def test_a_mesh_equal_to_the_object_scores_full_iou_at_the_views_native_resolution(tmp_path):
    """Silhouettes are scored at the views' own resolution against binary masks; a training render size
    of 32 (masks downsampled, boundary pixels fractional) must not cap the IoU of a perfect mesh."""
    from shapekit.config import RunConfig
    from shapekit.engine.runtime import Runtime
    from shapekit.io.multiview import load_multiview_set
    from shapekit.multiview_gen import make_multiview
    from shapekit.tasks import get_task

    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.vertices *= [1.0, 0.5, 0.6]
    mesh.export(tmp_path / "pod.obj")
    make_multiview([tmp_path / "pod.obj"], tmp_path / "data", views=6, size=96)
    config = RunConfig(task="mesh", data=tmp_path / "data", out=tmp_path / "run", input_size=64, val_fraction=0,
                       options={"template": str(tmp_path / "pod.obj"), "render_size": 32})
    task = get_task("mesh")(config)
    task.setup()
    model = task.build_model(pretrained=False).eval()  # zero offsets at start: the template is the object
    obj = load_multiview_set(tmp_path / "data")[0]
    scores, verts = task.score_object(model, obj, Runtime.create("cpu", "32"))
    assert torch.allclose(verts, task.template.vertices)
    assert scores["iou"] > 0.97, scores
    small_masks = obj.load(32)[1]  # what scoring at the training render size would compare against
    assert ((small_masks > 0.05) & (small_masks < 0.95)).mean() > 0.01


def test_aligned_shape_features_read_the_input_view_where_vertices_project(tmp_path):
    """Per-vertex features are sampled where each vertex projects through the input view's camera."""
    import math

    from shapekit.models import create_model
    from shapekit.render import PerspectiveCameras, orbit
    from shapekit.templates import icosphere

    torch.manual_seed(0)
    template = icosphere(2, (0.9, 0.5, 0.5))
    cam2world, _ = orbit(1, 2.6, (10.0,))
    model = create_model("mesh_net", num_vertices=template.num_vertices, encoder_weights=None,
                         shape_features="aligned", input_camera=(cam2world[0], math.radians(35)),
                         template_vertices=template.vertices)
    pixels, _ = PerspectiveCameras(cam2world[:1], math.radians(35), 128).project(template.vertices[None])
    grid = model._input_view_grid(template.vertices[None])[:, 0]
    assert torch.allclose(grid, (pixels + 0.5) / 128 * 2 - 1, atol=1e-5)
    # A vertex's offset responds to the input image near where it projects more than far from it.
    for parameter in model.vertex_heads[0][-1].parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    model.eval()
    image = torch.full((1, 3, 128, 128), 0.5, requires_grad=True)
    vertex = int(torch.argmax(template.vertices[:, 0]))  # the toe end of the ellipsoid
    model(image)["offsets"][0, vertex].abs().sum().backward()
    x, y = pixels[0, vertex].round().long().clamp(0, 127).tolist()
    saliency = image.grad.abs().sum((0, 1))
    near = saliency[max(0, y - 12):y + 13, max(0, x - 12):x + 13].mean()
    far = saliency[:, :40].mean() if x > 64 else saliency[:, -40:].mean()
    assert near > 3 * far, (float(near), float(far))


def test_checkpoints_from_before_aligned_features_load_as_pooled(tmp_path):
    from shapekit.config import RunConfig
    from shapekit.tasks import get_task

    config = RunConfig(task="mesh", data=tmp_path, out=tmp_path / "run", input_size=64, options={"template_level": 1})
    template = get_task("mesh")(config).template
    meta = {"template": {"vertices": template.vertices.tolist(), "faces": template.faces.tolist()},
            "input_shape": [64, 64]}
    model = get_task("mesh")(config, meta).build_model(pretrained=False)
    assert len(model.vertex_heads) == 0
