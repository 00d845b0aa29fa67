"""End to end through the CLI: train, evaluate, predict, and the errors users meet."""

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import data_dir
from shapekit.cli import main
from shapekit.io import load_landmark_set, read_tps
from shapekit.io.coco import read_coco_keypoints
from shapekit.io.csv_landmarks import read_csv


def test_training_leaves_checkpoints_metrics_and_plots(trained_run):
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "config.yaml", "loss_curves.png", "heatmaps.png",
                 "val_overlays.png"):
        assert (trained_run / name).is_file(), name
    rows = (trained_run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 1 + 14
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(14))
    meta = torch.load(trained_run / "best.ckpt", weights_only=False)["shapekit"]
    assert meta["task"] == "landmarks"
    assert meta["meta"]["landmark_names"] == [f"lm{k}" for k in range(1, 8)]
    assert meta["meta"]["input_shape"] == [128, 128] and meta["meta"]["y_origin"] == "bottom"
    assert yaml.safe_load((trained_run / "config.yaml").read_text())["epochs"] == 14
    # The loss went down: the network learned.
    losses = [float(r.split(",")[rows[0].split(",").index("train_loss")]) for r in rows[1:]]
    assert losses[-1] < 0.6 * losses[0]


def test_evaluate_reports_errors_in_original_pixels(trained_run, synthetic_split, tmp_path):
    out = tmp_path / "eval.json"
    main(["evaluate", "--model", str(trained_run / "best.ckpt"), "--data", str(synthetic_split[1]),
          "--json", str(out), "--out", str(tmp_path / "figures"), "--normalisation", "0,3"])
    report = json.loads(out.read_text())
    for key in ("n_images", "mean_px", "median_px", "mean_pct_long_side", "per_landmark", "nme", "pck_pct_long_side"):
        assert key in report
    assert report["n_images"] == 20 and len(report["per_landmark"]) == 7
    assert report["nme"]["normalisation"] == "0,3"
    # Random guessing on a 160-px image is ~30 % of the long side; a trained model is far better.
    assert report["mean_pct_long_side"] < 4.0, report["mean_pct_long_side"]
    assert (tmp_path / "figures" / "ced.png").is_file() and (tmp_path / "figures" / "worst_images.png").is_file()


def test_predicted_tps_keeps_landmark_order_and_y_convention(trained_run, synthetic_split, tmp_path):
    test_dir = synthetic_split[1]
    main(["predict", "--model", str(trained_run / "best.ckpt"), str(test_dir / "images"), "--out", str(tmp_path)])
    truth = {s.image: s.points for s in read_tps(test_dir / "landmarks.tps")}
    predicted = read_tps(tmp_path / "predictions.tps")
    assert sorted(s.image for s in predicted) == sorted(truth)
    errors = np.concatenate([np.linalg.norm(s.points - truth[s.image], axis=1) for s in predicted])
    # Same order and same (tpsDig, y from the bottom) convention: errors are small for every landmark.
    assert np.median(errors) < 4.0, np.median(errors)
    assert len(list((tmp_path / "overlays").glob("*.png"))) == len(truth)


def test_predict_other_formats_and_top_origin(trained_run, synthetic_split, tmp_path):
    images = synthetic_split[1] / "images"
    model = str(trained_run / "best.ckpt")
    main(["predict", "--model", model, str(images), "--out", str(tmp_path / "c"), "--format", "coco", "--no-overlays"])
    main(["predict", "--model", model, str(images), "--out", str(tmp_path / "v"), "--format", "csv", "--no-overlays"])
    main(["predict", "--model", model, str(images), "--out", str(tmp_path / "t"), "--y-origin", "top", "--no-overlays"])
    coco = read_coco_keypoints(tmp_path / "c" / "predictions.json")
    names, points, landmark_names = read_csv(tmp_path / "v" / "predictions.csv")
    top = {s.image: s.points for s in read_tps(tmp_path / "t" / "predictions.tps")}
    assert coco.keypoint_names == landmark_names == [f"lm{k}" for k in range(1, 8)]
    for image, annotation, row in zip(coco.images, coco.annotations, points):
        np.testing.assert_allclose(coco.keypoints(annotation)[:, :2], row, atol=2e-3)
        np.testing.assert_allclose(top[image["file_name"]], row, atol=1e-3)  # top origin = image coordinates
        assert len(annotation["keypoint_scores"]) == 7
    assert not (tmp_path / "c" / "overlays").exists()


def test_predict_skips_unreadable_images_with_one_line_each(trained_run, synthetic_split, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted((synthetic_split[1] / "images").iterdir())[0]
    (folder / good.name).write_bytes(good.read_bytes())
    broken = folder / "broken.png"
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(trained_run / "best.ckpt"), str(folder), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 1
    output = capsys.readouterr().out
    assert f"skipped {broken}: corrupt image" in output.replace("\n", "")
    assert [s.image for s in read_tps(tmp_path / "o" / "predictions.tps")] == [good.name]


def test_run_folder_is_never_overwritten(trained_run, synthetic_split, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(synthetic_split[0]), "--out", str(trained_run), "--epochs", "1"])
    assert exit_info.value.code == 2
    assert "already holds a training run; add --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "empty"), "--resume"])
    assert "nothing to resume" in capsys.readouterr().err


def test_evaluate_rejects_a_dataset_with_other_landmarks(trained_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(trained_run / "best.ckpt"), "--data", str(data_dir("drosophila-wings"))])
    assert exit_info.value.code == 2
    assert "has 12 landmarks per image, the model predicts 7" in capsys.readouterr().err


def test_bad_settings_are_one_line_errors(synthetic_split, tmp_path, capsys):
    cases = [
        (["--input-size", "100"], "must be a multiple of 32"),
        (["--opt", "target=square"], "options: target"),
        (["--encoder", "vgg"], "unknown encoder"),
        (["--task", "nope"], "unknown task"),
    ]
    for extra, words in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--data", str(synthetic_split[0]), "--out", str(tmp_path / extra[1]), "--epochs", "1"] + extra)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_real_grayscale_wings_train_and_evaluate_on_unseen_images(tmp_path):
    """Drosophila wings are 8-bit grayscale JPEGs: a short training run must already land near the veins."""
    from shapekit.io.landmark_dataset import split_dataset

    train, test = split_dataset(data_dir("drosophila-wings"), tmp_path / "split", 0.2, seed=0)
    main(["train", "--data", str(train), "--out", str(tmp_path / "run"), "--epochs", "10", "--input-size", "256"])
    main(["evaluate", "--model", str(tmp_path / "run" / "best.ckpt"), "--data", str(test),
          "--json", str(tmp_path / "e.json")])
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["n_images"] == len(load_landmark_set(test))
    assert report["mean_pct_long_side"] < 1.5, report["mean_pct_long_side"]
