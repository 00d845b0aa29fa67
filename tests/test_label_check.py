"""`shapekit check`: labelling mistakes are found, explained and repaired in a copy; inputs stay untouched."""

import json

import numpy as np
import pytest
from PIL import Image

from _label_fixtures import (DOUBLED, HEIGHT, MEAN_SHAPE, MIRROR_ORDER, MIRRORED, MISPLACED, SWAPPED, WIDTH,
                             true_shapes, write_mislabelled_dataset)
from conftest import data_dir
from shapekit.cli import main
from shapekit.errors import ShapekitError
from shapekit.io.landmark_dataset import load_landmark_set, write_landmarks
from shapekit.label_check import check_configurations, check_landmarks, expected_positions, run_check


@pytest.fixture(params=["tps", "csv", "coco"])
def mislabelled(request, tmp_path):
    folder = tmp_path / "specimens"
    file, truth = write_mislabelled_dataset(folder, request.param)
    return folder, file, truth


def test_each_mistake_is_found_and_explained(mislabelled):
    folder, _, truth = mislabelled
    report = check_landmarks(load_landmark_set(folder))
    flagged = {c.index: c for c in report["checks"] if c.issue}
    assert set(flagged) == {SWAPPED, MIRRORED, MISPLACED, DOUBLED}
    assert report["issues"] == {"coincident": 1, "order": 2, "landmark": 1, "shape": 0}

    swap = flagged[SWAPPED]
    assert swap.issue == "order" and swap.landmarks == (2, 5) and "swapped" in swap.message
    mirror = flagged[MIRRORED]
    assert mirror.issue == "order" and "mirror" in mirror.message
    assert np.array_equal(np.asarray(mirror.renumbering) - 1, MIRROR_ORDER)
    misplaced = flagged[MISPLACED]
    assert misplaced.issue == "landmark" and misplaced.landmarks == (4,)
    assert np.linalg.norm(np.asarray(misplaced.expected_xy) - truth[MISPLACED, 3]) < 8  # points to the true spot
    assert flagged[DOUBLED].issue == "coincident" and flagged[DOUBLED].landmarks == (6, 7)


def test_cleaned_copy_repairs_numbering_drops_the_rest_and_leaves_the_input(mislabelled, tmp_path):
    folder, file, truth = mislabelled
    before = (folder / file).read_bytes()
    report = run_check(folder, tmp_path / "report", clean_out=tmp_path / "clean")
    assert (folder / file).read_bytes() == before
    assert report["n_renumbered"] == 2 and report["n_dropped"] == 2
    clean = load_landmark_set(tmp_path / "clean")
    by_name = {r.image_path.name: r.points for r in clean.records}
    assert len(by_name) == len(truth) - 2 and "s11.png" not in by_name and "s15.png" not in by_name
    for k in (SWAPPED, MIRRORED):  # renumbered back to the true order
        np.testing.assert_allclose(by_name[f"s{k:02d}.png"], truth[k], atol=0.01)
    assert check_landmarks(clean)["n_flagged"] == 0

    kept = run_check(folder, tmp_path / "report2", clean_out=tmp_path / "all", renumber=False, drop=False)
    assert kept["n_renumbered"] == 0 and kept["n_dropped"] == 0
    np.testing.assert_allclose(np.stack([r.points for r in load_landmark_set(tmp_path / "all").records]),
                               np.stack([r.points for r in load_landmark_set(folder).records]), atol=0.01)
    saved = json.loads((tmp_path / "report" / "label_check.json").read_text())
    assert saved["n_flagged"] == 4 and (tmp_path / "report" / "label_check.png").stat().st_size > 10_000
    rows = (tmp_path / "report" / "label_check.csv").read_text().splitlines()
    assert len(rows) == len(truth) + 1 and rows[1].split(",")[1] in {"order", "landmark", "coincident"}


def test_expected_positions_recover_a_moved_landmark():
    truth = true_shapes(6, seed=3)
    moved = truth.copy()
    moved[:, 2] += 30
    expected = expected_positions(moved, MEAN_SHAPE / np.linalg.norm(MEAN_SHAPE - MEAN_SHAPE.mean(0)))
    assert np.abs(expected[:, 2] - truth[:, 2]).max() < 8
    # the moved landmark stands out: its offset from where the others put it is the largest in every specimen
    assert (np.linalg.norm(moved - expected, axis=-1).argmax(axis=1) == 2).all()


def test_cli_check_prints_the_flagged_images(mislabelled, tmp_path, capsys):
    folder, _, _ = mislabelled
    main(["check", str(folder), "--out", str(tmp_path / "r"), "--clean-out", str(tmp_path / "c")])
    printed = capsys.readouterr().out
    assert "4 of 40 images flagged" in printed and "s03.png" in printed and "2 renumbered, 2 left out" in printed


@pytest.mark.parametrize("args, words", [
    (["--threshold", "0"], "--threshold"),
    (["--y-origin", "middle"], "--y-origin"),
])
def test_cli_check_refuses_bad_options(mislabelled, tmp_path, capsys, args, words):
    folder, _, _ = mislabelled
    with pytest.raises(SystemExit):
        main(["check", str(folder), "--out", str(tmp_path / "r")] + args)
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_too_few_images_is_a_clear_error(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "images").mkdir(parents=True)
    for k in range(3):
        Image.new("RGB", (WIDTH, HEIGHT)).save(folder / "images" / f"{k}.png")
    write_landmarks(folder / "landmarks.csv", "csv", [f"{k}.png" for k in range(3)], true_shapes(3),
                    [f"p{k}" for k in range(8)], [HEIGHT] * 3, [WIDTH] * 3)
    with pytest.raises(ShapekitError, match="at least 5 images"):
        check_landmarks(load_landmark_set(folder))


def test_lizard_toepads_mirror_numbered_specimens_are_found():
    """On the real lizard toe pads: a dozen specimens numbered the other way round (left/right reversed),
    one with its base landmarks swapped; the cleaned copy's numbering is typical again."""
    report = check_landmarks(load_landmark_set(data_dir("lizard-toepads")))
    order = {c.image: c for c in report["checks"] if c.issue == "order"}
    mirrored = {name for name, c in order.items() if "mirror" in c.message}
    assert {"0096.jpg", "1063.jpg", "0001.jpg", "0547.jpg"} <= mirrored and len(mirrored) >= 10
    assert all(c.renumbering == (2, 1, 4, 3, 6, 5, 8, 7, 9) for name, c in order.items() if name in mirrored)
    assert order["0740.jpg"].landmarks == (1, 2) and "swapped" in order["0740.jpg"].message
    assert report["n_flagged"] < 0.1 * report["n_checked"]


def test_training_notes_the_sure_mistakes(mislabelled):
    """`shapekit train` starts with a note naming the images numbered in another order or with doubled points."""
    from shapekit.tasks._keypoints import label_check_notes

    folder, _, _ = mislabelled
    notes = label_check_notes(load_landmark_set(folder), folder)
    assert len(notes) == 1 and "3 of 40 images" in notes[0]
    assert all(name in notes[0] for name in ("s03.png", "s07.png", "s15.png")) and "s11.png" not in notes[0]
    assert label_check_notes(load_landmark_set(data_dir("drosophila-wings")), "wings") == []


def test_a_distorted_shape_is_not_blamed_on_numbering():
    """A reshuffle of many landmarks that happens to fit better is a distorted shape, not a numbering mistake;
    neither are two landmarks that meet in many images (closed lips)."""
    truth = true_shapes(40)
    labels = truth.copy()
    labels[5] = labels[5][[2, 0, 1, 5, 3, 4, 6, 7]]  # three-cycles: nobody clicks like this
    labels[:20, 7] = labels[:20, 6]  # apex and centre meet in half of the images
    report = check_configurations(labels, [f"s{k:02d}" for k in range(40)])
    flagged = {c.index: c for c in report["checks"] if c.issue}
    assert 5 in flagged and flagged[5].issue in {"landmark", "shape"}
    assert report["issues"]["coincident"] == 0


def test_evaluation_names_the_flagged_images_and_scores_the_others(mislabelled, tmp_path):
    """`shapekit evaluate` says which of its images the label check flags, and the mean error without them."""
    from rich.console import Console

    from shapekit.config import RunConfig
    from shapekit.engine import Runtime
    from shapekit.tasks.landmarks import LandmarkTask

    folder, _, _ = mislabelled
    meta = {"landmark_names": [f"lm{k}" for k in range(8)], "num_landmarks": 8, "flip_pairs": [], "y_origin": "top",
            "input_shape": [64, 64], "pad_fill": 0, "refine": None}
    task = LandmarkTask(RunConfig(input_size=64, encoder_weights="none"), meta)
    model = task.build_model(pretrained=False).eval()
    report = task.evaluate(model, folder, runtime=Runtime.create("cpu", "32"), out_dir=tmp_path / "eval")
    flagged = report["label_check"]["flagged"]
    assert set(flagged) == {f"s{k:02d}.png" for k in (SWAPPED, MIRRORED, MISPLACED, DOUBLED)}
    assert flagged[f"s{SWAPPED:02d}.png"]["issue"] == "order"

    labels = np.stack([r.points for r in task.load_landmarks(folder).records])  # in the model's y convention
    pct = np.linalg.norm(report["_predictions"] - labels, axis=-1) / max(WIDTH, HEIGHT) * 100
    others = [k for k in range(len(labels)) if f"s{k:02d}.png" not in flagged]
    assert report["label_check"]["mean_pct_long_side_unflagged"] == pytest.approx(pct[others].mean(), rel=1e-6)
    assert report["label_check"]["mean_pct_long_side_unflagged"] != pytest.approx(report["mean_pct_long_side"])

    console = Console(record=True, width=200)
    task.print_report(report, console)
    printed = console.export_text()
    assert "The label check flags 4 of these images" in printed and f"s{MIRRORED:02d}.png" in printed
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert set(saved["label_check"]["flagged"]) == set(flagged)
