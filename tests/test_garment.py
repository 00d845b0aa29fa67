"""Garment digitisation: the parametric template, users' templates, the warp, and `shapekit garment` end to end."""

import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import data_dir
from shapekit.cli import main
from shapekit.errors import InputError, ShapekitError
from shapekit.garment import DEFAULT_LANDMARK_MODEL
from shapekit.garment.pipeline import (GarmentModels, LowConfidenceError, NoGarmentError, PhotoGarment, digitise,
                                       garment_jobs, panel_texture)
from shapekit.garment.render import render_front
from shapekit.io.meshes import load_mesh
from shapekit.templates.garment import (LANDMARK_NAMES, GarmentProportions, build_garment, garment_outline,
                                        load_garment_template)

BACKGROUND = (255, 0, 255)
LEFT, RIGHT, TOP = (220, 30, 30), (30, 60, 220), (30, 200, 60)


def silhouette_widths(image: np.ndarray, fractions) -> list[int]:
    """Garment width (non-white pixels) at rows a fraction of the way down the garment's bounding box."""
    garment = (image < 245).any(-1)
    rows = np.flatnonzero(garment.any(1))
    top, bottom = rows[0], rows[-1]
    return [int(garment[int(top + f * (bottom - top))].sum()) for f in fractions]


def test_template_layout_and_export(tmp_path):
    template = build_garment()
    for panel in ("front", "back"):
        lm = dict(zip(LANDMARK_NAMES, template.landmarks[panel]))
        assert lm["left_collar"][0] > lm["right_collar"][0]  # garment's left at larger u (front-view layout)
        assert lm["left_hem"][1] > lm["left_sleeve"][1] > lm["left_collar"][1]  # v grows downwards
        assert np.allclose(template.outlines[panel][template.outline_landmarks[panel]], template.landmarks[panel])
        half = 0 if panel == "front" else 0.5
        assert ((template.outlines[panel][:, 0] > half) & (template.outlines[panel][:, 0] < half + 0.5)).all()
    assert not (template.panel_mask("front") & template.panel_mask("back")).any()
    paths = template.export(tmp_path / "tpl")
    mesh = load_mesh(paths["glb"], allow_nonmanifold=True)
    assert mesh.uv is not None and mesh.texture is not None and len(mesh.faces) == len(template.faces)
    spec = json.loads(paths["json"].read_text())
    assert set(spec["panels"]["front"]["landmarks"]) == set(LANDMARK_NAMES)
    # The exported template read back as a user template: same landmarks (within rounding).
    again = load_garment_template(paths["obj"])
    assert np.allclose(again.landmarks["front"], template.landmarks["front"], atol=1e-5)
    assert again.panels == ["front", "back"]


def test_tank_top_render_is_narrower_at_the_top_than_at_the_hem():
    tank = build_garment(GarmentProportions(body_width=0.5, shoulder_width=0.3, neck_width=0.2, sleeve_length=0.0))
    image = render_front(tank.vertices, tank.faces, tank.face_uvs, tank.chequer(), size=192)
    straps, chest, hem = silhouette_widths(image, [0.06, 0.5, 0.97])
    assert straps < 0.75 * hem and chest == pytest.approx(hem, rel=0.15)
    tee = build_garment(GarmentProportions(sleeve_length=0.25, sleeve_angle=30))
    sleeves, _, tee_hem = silhouette_widths(render_front(tee.vertices, tee.faces, tee.face_uvs, tee.chequer(), 192),
                                            [0.3, 0.5, 0.97])
    assert sleeves > 1.4 * tee_hem  # sleeves stick out beyond the body


def test_proportions_from_landmarks():
    # Front-view pixels (y down); the garment's left is on the image's right.
    tank = np.array([[330, 100], [250, 100], [345, 160], [235, 160], [360, 400], [220, 400]], float)
    fitted = GarmentProportions.from_landmarks(tank)
    assert fitted.sleeve_length == 0 and fitted.shoulder_width < fitted.body_width
    assert fitted.body_width == pytest.approx(140 / 300 * 0.7, rel=1e-6)
    tee = np.array([[310, 100], [270, 100], [430, 200], [150, 200], [360, 400], [220, 400]], float)
    sleeved = GarmentProportions.from_landmarks(tee)
    assert sleeved.sleeve_length > 0.1 and 10 < sleeved.sleeve_angle < 80
    with pytest.raises(ShapekitError, match="neck_width"):
        GarmentProportions(neck_width=0.5, shoulder_width=0.4)


def test_user_template_missing_landmark_is_one_line_error(tmp_path, capsys):
    paths = build_garment().export(tmp_path / "tpl")
    spec = json.loads(paths["json"].read_text())
    del spec["panels"]["front"]["landmarks"]["left_sleeve"]
    paths["json"].write_text(json.dumps(spec))
    with pytest.raises(InputError, match="missing landmark.*left_sleeve"):
        load_garment_template(paths["obj"])
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        main(["garment", str(photo), "--template", str(paths["obj"]), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "garment-template.json" in err and "left_sleeve" in err
    assert not (tmp_path / "out").exists()


def synthetic_photo():
    """A flat garment painted on a magenta background: its left half red, right half blue, a green band at the
    top; with its six landmarks. Its outline is a tee pattern different from the template's defaults."""
    proportions = GarmentProportions(body_width=0.44, shoulder_width=0.42, sleeve_length=0.22, sleeve_angle=50)
    corners, index = garment_outline(proportions)
    corners = np.array(corners)
    to_photo = lambda p: np.column_stack([320 + p[:, 0] * 420, 420 - p[:, 1] * 420])  # noqa: E731
    polygon = to_photo(corners)
    image = np.full((480, 640, 3), BACKGROUND, np.uint8)
    mask = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    mask = mask.astype(bool)
    xx, yy = np.meshgrid(np.arange(640), np.arange(480))
    image[mask & (xx >= 320)] = LEFT
    image[mask & (xx < 320)] = RIGHT
    image[mask & (yy < 420 - 0.6 * 420)] = TOP
    landmarks = polygon[[index[k] for k in range(6)]]
    return image, mask, landmarks


def test_warp_puts_collar_sleeves_and_hem_in_place_without_background():
    image, mask, landmarks = synthetic_photo()
    template = build_garment(GarmentProportions.from_landmarks(landmarks))
    colours, valid, coverage = panel_texture(PhotoGarment(image, landmarks, np.ones(6), mask), template, "front")
    assert coverage > 90
    width, height = template.texture_size
    lm = dict(zip(LANDMARK_NAMES, template.landmarks["front"] * [width, height]))
    centre_x = (lm["left_collar"][0] + lm["right_collar"][0]) / 2

    def colour_near(point, towards):
        """Texture colour a little inside the panel from a landmark."""
        x, y = np.round(point + 0.06 * (np.asarray(towards) - point)).astype(int)
        return colours[y, x].astype(int)

    body_centre = np.array([centre_x, (lm["left_collar"][1] + lm["left_hem"][1]) / 2])
    assert np.abs(colour_near(lm["left_sleeve"], body_centre) - LEFT).max() < 40
    assert np.abs(colour_near(lm["right_sleeve"], body_centre) - RIGHT).max() < 40
    assert np.abs(colour_near(lm["left_collar"], body_centre) - TOP).max() < 40
    assert np.abs(colour_near(lm["left_hem"], body_centre) - LEFT).max() < 40
    assert np.abs(colour_near(lm["right_hem"], body_centre) - RIGHT).max() < 40
    texels = colours[valid].astype(int)
    assert np.abs(texels - BACKGROUND).max(1).min() > 60  # no background texel inside the garment


def test_photo_jobs():
    with pytest.raises(ShapekitError, match="--each"):
        garment_jobs([DEFAULT_LANDMARK_MODEL] * 3)


@pytest.fixture(scope="module")
def models():
    return GarmentModels.load()


@pytest.fixture(scope="module")
def heldout_photos():
    """Two garments-fld photos the shipped model did not train on (the every-5th-from-the-3rd split)."""
    names = sorted(p.name for p in (data_dir("garments-fld") / "images").glob("*.jpg"))[2::5]
    return [data_dir("garments-fld") / "images" / n for n in (names[0], names[7])]


def test_garment_command_end_to_end(tmp_path, heldout_photos):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(heldout_photos[0], photos / "tank.jpg")
    shutil.copy(heldout_photos[1], photos / "shirt.jpg")
    back = cv2.imread(str(heldout_photos[1]))[:, ::-1]  # stands in for a back view
    cv2.imwrite(str(photos / "shirt_back.jpg"), back)
    main(["garment", str(photos), "--out", str(tmp_path / "out")])
    for name, back_source in (("tank", "mirrored from the front"), ("shirt", "photo")):
        folder = tmp_path / "out" / name
        summary = json.loads((folder / "garment.json").read_text())
        assert summary["back_texture"] == back_source
        assert min(summary["confidence"]) >= 0.3 and summary["coverage_pct"] > 80
        mesh = load_mesh(folder / "garment.glb", allow_nonmanifold=True)
        texture = cv2.imread(str(folder / "garment.png"))
        assert mesh.texture is not None and texture.shape[:2] == (512, 1024)
        render = cv2.imread(str(folder / "render_front.png"))
        assert render.shape[0] == 384 and render.shape[1] > 2 * 384
        assert (folder / "garment.obj").read_text().startswith("mtllib garment.mtl")
    assert not (tmp_path / "out" / "shirt_back").exists()


def test_no_garment_and_low_confidence_write_nothing(tmp_path, models, heldout_photos, capsys):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((384, 512, 3), (200, 205, 210), np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        main(["garment", str(wall), "--out", str(tmp_path / "wall-out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "wall.png" in err and ("no garment" in err or "low confidence" in err)
    assert not (tmp_path / "wall-out").exists()
    with pytest.raises(LowConfidenceError, match="low confidence"):
        digitise(heldout_photos[0], None, tmp_path / "strict", models, min_confidence=0.999)
    assert not (tmp_path / "strict").exists()
    with pytest.raises((NoGarmentError, LowConfidenceError)):
        digitise(wall, None, tmp_path / "wall-2", models)


def test_user_template_is_textured(tmp_path, models, heldout_photos):
    exported = build_garment(GarmentProportions(sleeve_length=0.0, shoulder_width=0.3)).export(tmp_path / "tpl")
    main(["garment", str(heldout_photos[0]), "--template", str(exported["obj"]), "--out", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "garment.json").read_text())
    assert summary["template"] == str(exported["obj"]) and summary["coverage_pct"] > 80
    texture = cv2.imread(str(tmp_path / "out" / "garment.png"))
    assert texture.shape[:2] == (1024, 1024)
    assert len(load_mesh(tmp_path / "out" / "garment.glb", allow_nonmanifold=True).faces) == len(
        load_mesh(exported["obj"], allow_nonmanifold=True).faces)
