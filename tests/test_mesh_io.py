"""Mesh and multi-view folder reading: one-line errors for malformed inputs; the multi-view generator."""

import json

import numpy as np
import pytest
import trimesh

from conftest import DATA
from shapekit.errors import InputError
from shapekit.io.meshes import load_mesh
from shapekit.io.multiview import load_multiview_object, load_multiview_set


def test_real_shoe_meshes_load():
    sneaker = load_mesh(DATA / "shoes" / "sneaker" / "mesh" / "shoe.obj")
    assert sneaker.texture is not None and sneaker.uv is not None and len(sneaker.faces) == 22700
    boot = load_mesh(DATA / "shoes" / "boot" / "mesh" / "boot.obj")
    assert boot.texture is None and len(boot.faces) == 39906


def test_real_multiview_folders_load():
    objects = load_multiview_set(DATA / "shoes")
    assert {o.name for o in objects} == {"boot", "sneaker"}
    views, masks = objects[1].load(64)
    assert views.shape == (48, 64, 64, 3) and masks.shape == (48, 64, 64) and 0 < masks.mean() < 0.6


def test_mesh_without_faces(tmp_path):
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(InputError, match="has no faces"):
        load_mesh(path)


def test_non_manifold_mesh(tmp_path):
    path = tmp_path / "fin.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 -1 0\nv 0 0 1\nf 1 2 3\nf 2 1 4\nf 1 2 5\n")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert str(info.value).startswith(str(path)) and "non-manifold" in str(info.value)


def test_missing_texture_file(tmp_path):
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd missing.png\n")
    path = tmp_path / "m.obj"
    path.write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl a\nf 1/1 2/2 3/3\n")
    with pytest.raises(InputError, match="missing.png is missing"):
        load_mesh(path)


def _object(tmp_path, frames):
    folder = tmp_path / "obj"
    folder.mkdir()
    from PIL import Image
    Image.new("RGB", (8, 8)).save(folder / "view_000.png")
    Image.new("L", (8, 8)).save(folder / "view_000_mask.png")
    (folder / "cameras.json").write_text(json.dumps({"yfov_rad": 0.6, "image_size": 8, "frames": frames}))
    return folder


@pytest.mark.parametrize("matrix, words", [
    (np.eye(4)[:3].tolist(), "cam2world must be 4x4, got 3x4"),
    ([[1, 2], [3, 4]], "must be 4x4, got 2x2"),
    ((np.eye(4) * 2).tolist(), "not a rigid transform"),
    ("abc", "not a numeric matrix"),
])
def test_camera_file_with_wrong_shapes(tmp_path, matrix, words):
    folder = _object(tmp_path, [{"file": "view_000.png", "mask": "view_000_mask.png", "cam2world": matrix}])
    with pytest.raises(InputError) as info:
        load_multiview_object(folder)
    assert str(info.value).startswith(str(folder / "cameras.json")) and words in str(info.value)


def test_camera_file_bad_json_and_missing_view(tmp_path):
    folder = _object(tmp_path, [{"file": "view_001.png", "cam2world": np.eye(4).tolist()}])
    with pytest.raises(InputError, match="view_001.png is missing"):
        load_multiview_object(folder)
    (folder / "cameras.json").write_text('{"frames": [\n{"file": 1,}\n]}')
    with pytest.raises(InputError, match=r"cameras.json:2: invalid JSON"):
        load_multiview_object(folder)


def test_make_multiview_renders_variants(tmp_path):
    from shapekit.cli import main

    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.vertices *= [1.0, 0.5, 0.4]
    mesh.export(tmp_path / "blob.obj")
    main(["make-multiview", str(tmp_path / "blob.obj"), "--out", str(tmp_path / "mv"), "--views", "4",
          "--variants", "2", "--size", "48"])
    objects = load_multiview_set(tmp_path / "mv")
    assert [o.name for o in objects] == ["blob_000", "blob_001", "blob_original"]
    masks = [o.load()[1] for o in objects]
    assert all(m.shape == (4, 48, 48) and 0.02 < m.mean() < 0.8 for m in masks)
    assert np.abs(masks[0] - masks[1]).mean() > 0.01  # the variants differ in shape
    assert (tmp_path / "mv" / "blob_000" / "mesh.obj").is_file()
