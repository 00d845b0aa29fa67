"""The web page end to end in a real browser (Debian's chromium driven by Playwright): review a dataset,
drag a landmark, undo, save and find the TPS changed on disk; predict and sort by confidence; list the label
check's flagged images first and clear a flag by correcting the labels; upload a photo
and see its mask; 3D views of a mesh and of 3D landmarks. Screenshots are kept in tests/artifacts/
(or $SHAPEKIT_ARTIFACTS)."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from _label_fixtures import SWAPPED, write_mislabelled_dataset
from _serve import (ARTIFACTS, browser_page, canvas_pixel, live_server, make_workspace, photo,
                    random_mesh_checkpoint)
from shapekit.io import tps
from shapekit.serve import create_app

MARKER = (255, 176, 32)  # the page's landmark fill colour
MASK_COLOUR = (255, 64, 160)  # its colour for mask class 1


@pytest.fixture(scope="module")
def site(tmp_path_factory, trained_run):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = make_workspace(tmp_path_factory.mktemp("web") / "ws", trained_run / "best.ckpt")
    (root / "models" / "mesh").mkdir()
    random_mesh_checkpoint(root / "models" / "mesh" / "best.ckpt")
    (root / "models" / "mesh" / "config.yaml").write_text("task: mesh\n")  # as in a run folder: names the task
    app = create_app(root)
    with live_server(app) as base:
        yield base, root


def _close(colour, expected, tolerance=40):
    return all(abs(int(a) - b) <= tolerance for a, b in zip(colour[:3], expected))


def _wait_shown(page, name=None):
    if name is None:
        page.wait_for_function("document.body.dataset.shown && document.body.dataset.busy !== '1'")
    else:
        page.wait_for_function("n => document.body.dataset.shown === n && document.body.dataset.busy !== '1'", arg=name)


def _screen(page, point):
    return page.evaluate("([x, y]) => window.shapekit.toScreen(x, y)", point)


def _drag(page, start, delta):
    box = page.locator("#canvas").bounding_box()
    x, y = box["x"] + start[0], box["y"] + start[1]
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 6):
        page.mouse.move(x + delta[0] * k / 5, y + delta[1] * k / 5)
    page.mouse.up()


def _upload(page, base, model, upload, test_time=None):
    page.goto(base)
    page.wait_for_function("document.body.dataset.ready")
    page.select_option("#model", model)
    if test_time:
        page.select_option("#test-time", test_time)
    page.set_input_files("#upload", str(upload))


def _options(page, select):
    return page.locator(f"{select} option").evaluate_all("options => options.map(o => o.value)")


def test_review_drag_undo_save_changes_the_tps_file(site, tmp_path):
    base, root = site
    path = root / "specimens" / "landmarks.tps"
    original = path.read_text()
    before = tps.read_tps(path)
    with browser_page(tmp_path / "profile") as page:
        page.goto(f"{base}/?dataset=specimens")
        _wait_shown(page, "specimen_0000.png")
        item = page.evaluate("window.shapekit.currentItem()")
        scale = page.evaluate("window.shapekit.state.view.scale")
        assert len(item["points"]) == 7 and scale > 1
        # Every landmark is drawn where the TPS file puts it (y flipped from tpsDig's bottom origin).
        for k, point in enumerate(item["points"]):
            x, y = before[0].points[k][0], 128 - before[0].points[k][1]
            assert point == pytest.approx([x, y], abs=1e-4)
            assert _close(canvas_pixel(page, *_screen(page, point)), MARKER), k

        target = 2
        start = _screen(page, item["points"][target])
        _drag(page, start, (40, -25))
        moved = page.evaluate("window.shapekit.currentItem().points")
        assert moved[target] == pytest.approx([item["points"][target][0] + 40 / scale,
                                               item["points"][target][1] - 25 / scale], abs=1e-3)
        assert _close(canvas_pixel(page, start[0] + 40, start[1] - 25), (255, 60, 60)) or \
            _close(canvas_pixel(page, start[0] + 40, start[1] - 25), MARKER)
        page.keyboard.press("Control+z")
        assert page.evaluate("window.shapekit.currentItem().points")[target] == pytest.approx(item["points"][target])
        assert not page.evaluate("window.shapekit.currentItem().dirty")

        _drag(page, start, (30, 20))
        page.keyboard.press("ArrowRight")
        _wait_shown(page, "specimen_0001.png")
        page.keyboard.press("ArrowLeft")
        _wait_shown(page, "specimen_0000.png")
        assert page.locator("#images li.dirty").count() == 1
        page.screenshot(path=str(ARTIFACTS / "review-landmarks.png"))
        page.keyboard.press("Control+s")
        page.wait_for_function("document.body.dataset.saved")
        assert "saved 1 images to specimens/landmarks.tps" in page.locator("#status").inner_text()

    after = tps.read_tps(path)
    backups = sorted(path.parent.glob("landmarks.tps.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == original
    for k, (old, new) in enumerate(zip(before, after)):
        expected = old.points.copy()
        if k == 0:  # 30 screen px right, 20 down = 20 / scale up in TPS coordinates
            expected[target] += [30 / scale, -20 / scale]
        np.testing.assert_allclose(new.points, expected, atol=2e-3)
        assert (new.id, new.scale, new.comment) == (old.id, old.scale, old.comment)


def test_predict_then_review_the_least_confident_first(site, tmp_path):
    base, root = site
    with browser_page(tmp_path / "profile") as page:
        page.goto(f"{base}/?dataset=specimens&model=models/landmarks.ckpt")
        _wait_shown(page)
        # A two-stage landmark model offers its crop votes and full TTA; the choice travels with the request.
        assert _options(page, "#test-time") == ["off", "votes", "full"] and page.is_enabled("#test-time")
        page.select_option("#test-time", "votes")
        page.click("#predict")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('predicted')")
        _wait_shown(page)
        payload = json.loads((root / "specimens" / "shapekit-predictions.json").read_text())
        stored = payload["images"]
        assert payload["test_time"] == "votes"
        by_score = sorted(stored, key=lambda name: stored[name]["score"])
        listed = page.locator("#images li").evaluate_all("items => items.map(li => li.dataset.name)")
        assert page.locator("#sort").input_value() == "confidence" and listed == by_score
        assert page.evaluate("document.body.dataset.shown") == by_score[0]
        # The predictions are drawn as crosses over the annotation (each cross centre in the cross colour).
        for point in stored[by_score[0]]["points"]:
            assert _close(canvas_pixel(page, *_screen(page, point)), (64, 200, 255), 60)
        page.screenshot(path=str(ARTIFACTS / "predicted-sorted.png"))
        page.select_option("#export-format", "csv")
        with page.expect_download() as download:
            page.click("#export")
        exported = open(download.value.path()).read().splitlines()
        assert download.value.suggested_filename == "landmarks.csv" and len(exported) == 7
        assert exported[0].startswith("image,lm1_x,lm1_y") and sorted(r.split(",")[0] for r in exported[1:]) == sorted(stored)


def test_flagged_labels_first_then_a_correction_clears_the_flag(site, tmp_path):
    base, root = site
    write_mislabelled_dataset(root / "mislabelled")
    swapped = f"s{SWAPPED:02d}.png"
    with browser_page(tmp_path / "profile") as page:
        page.goto(f"{base}/?dataset=mislabelled")
        _wait_shown(page)
        assert "label check: 4 of 40 flagged" in page.locator("#status").inner_text()
        page.select_option("#sort", "check")
        listed = page.locator("#images li").evaluate_all("items => items.map(li => li.dataset.name)")
        assert set(listed[:4]) == {"s03.png", "s07.png", "s11.png", "s15.png"}
        assert page.locator("#images li.flagged").count() == 4
        page.click(f"#images li[data-name='{swapped}']")
        _wait_shown(page, swapped)
        assert "landmarks 2 and 5 look swapped" in page.locator("#image-check").inner_text()
        page.screenshot(path=str(ARTIFACTS / "label-check.png"))
        # Put the two landmarks back where they belong, save: the check runs again on the stored file.
        page.evaluate("""() => { const item = window.shapekit.currentItem();
            [item.points[1], item.points[4]] = [item.points[4], item.points[1]]; item.dirty = true; }""")
        page.keyboard.press("Control+s")
        page.wait_for_function("document.body.dataset.saved")
        page.wait_for_function("document.querySelectorAll('#images li.flagged').length === 3")
        assert page.locator("#image-check").inner_text() == ""


def test_upload_a_photo_and_see_its_mask(site, tmp_path):
    base, _ = site
    upload = photo(tmp_path / "astronaut.jpg")
    with browser_page(tmp_path / "profile") as page:
        _upload(page, base, "shipped:segment", upload, test_time="full")
        page.wait_for_function("window.shapekit.currentItem() && window.shapekit.currentItem().overlay")
        _wait_shown(page, "astronaut.jpg")
        assert _options(page, "#test-time") == ["off", "full"]  # masks: no crop votes
        result = page.evaluate("window.shapekit.currentItem().prediction")
        assert result["kind"] == "mask" and result["test_time"] == "full" and 0.1 < result["coverage"] < 0.7
        assert "mask covering" in page.locator("#status").inner_text()
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png"]))))
        inside = np.argwhere(ndimage.binary_erosion(mask > 0, iterations=15))
        outside = np.argwhere(ndimage.binary_erosion(mask == 0, iterations=15))
        y, x = inside[len(inside) // 2]
        oy, ox = outside[len(outside) // 2]
        shown = canvas_pixel(page, *_screen(page, [float(x), float(y)]))
        background = canvas_pixel(page, *_screen(page, [float(ox), float(oy)]))
        page.screenshot(path=str(ARTIFACTS / "upload-mask.png"))
        page.keyboard.press("m")  # mask off
        plain = canvas_pixel(page, *_screen(page, [float(x), float(y)]))
        plain_background = canvas_pixel(page, *_screen(page, [float(ox), float(oy)]))
        assert not page.locator("#show-mask").is_checked()
        # Inside the mask the photo is blended with the overlay's pink (alpha 120/255); outside nothing changes.
        blend = np.array(plain[:3]) * (1 - 120 / 255) + np.array(MASK_COLOUR) * 120 / 255
        assert np.abs(np.array(shown[:3]) - blend).max() <= 6, (shown, plain, blend)
        assert np.abs(np.array(shown[:3]) - np.array(plain[:3])).max() > 20
        assert background == plain_background


def test_3d_views_for_a_mesh_and_for_3d_landmarks(site, tmp_path):
    base, _ = site
    upload = photo(tmp_path / "astronaut.jpg")
    coloured = """() => {
        const source = document.querySelector('#viewer3d canvas');
        const copy = document.createElement('canvas');
        copy.width = source.width; copy.height = source.height;
        const ctx = copy.getContext('2d');
        ctx.drawImage(source, 0, 0);
        const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
        let count = 0;
        for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - 0x20) + Math.abs(data[i + 1] - 0x23) + Math.abs(data[i + 2] - 0x27) > 30) count++;
        return count / (data.length / 4);
    }"""
    with browser_page(tmp_path / "profile") as page:
        _upload(page, base, "models/mesh/best.ckpt", upload)
        page.wait_for_function("window.shapekit.viewer() && window.shapekit.viewer().kind === 'mesh'")
        assert page.locator("#panel3d").is_visible()
        assert _options(page, "#test-time") == ["off"] and not page.is_enabled("#test-time")  # meshes have none
        summary = page.evaluate("window.shapekit.viewer()")
        result = page.evaluate("window.shapekit.currentItem().prediction")
        assert summary["vertices"] == 3 * result["num_faces"]  # GLB corners: one vertex per face corner
        assert page.evaluate(coloured) > 0.05  # the mesh covers part of the view
        page.screenshot(path=str(ARTIFACTS / "mesh-3d.png"))

        # The shipped face model finds the astronaut's face (left half, upper part of the photo).
        page.select_option("#model", "shipped:landmarks3d")
        page.click("#predict")
        page.wait_for_function("window.shapekit.viewer() && window.shapekit.viewer().kind === 'landmarks3d'",
                               timeout=60000)
        result = page.evaluate("window.shapekit.currentItem().prediction")
        assert len(result["instances"]) == 1, result["message"]
        assert page.evaluate("window.shapekit.viewer().points") == len(result["instances"][0]["points"]) == 68
        x0, y0, x1, y1 = result["instances"][0]["box"]
        assert 100 < (x0 + x1) / 2 < 300 and 40 < (y0 + y1) / 2 < 220, result["instances"][0]["box"]
        assert page.evaluate(coloured) > 0.0005
        # The 2D overlay draws each 3D landmark at its x, y on the photo (blue-ish dots), and the box.
        for point in result["instances"][0]["points"][:4]:
            colour = canvas_pixel(page, *_screen(page, point[:2]))
            assert colour[2] > 200 and colour[2] > colour[0] - 60, colour
        page.screenshot(path=str(ARTIFACTS / "landmarks3d.png"))
