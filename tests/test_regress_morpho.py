"""Regression CNN, cross-validation rounds, transfer between landmark sets, shape analysis."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from shapekit.cli import main
from shapekit.errors import ShapekitError
from shapekit.io import read_tps, tps
from shapekit.models import create_model
from shapekit.morphometrics import centroid_size, gpa, procrustes_distance
from shapekit.transforms import ChannelAugment


def test_paper_cnn_layers():
    model = create_model("landmark_cnn", num_landmarks=8, width=256, height=192)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (2, 2)), (128, (2, 2))]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.2, 0.3, 0.5]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1000, 1000, 16]
    assert linears[0].in_features == 128 * 31 * 23  # the paper's 1 x 256 x 192 input after three blocks
    assert model(torch.rand(2, 3, 192, 256)).shape == (2, 8, 2)


def test_channel_augment_shift_and_split():
    image = np.random.default_rng(0).integers(30, 220, (8, 8, 3), dtype=np.uint8)
    np.random.seed(1)
    seen = set()
    for _ in range(60):
        out = ChannelAugment(shift=20, p_shift=0.5, p_split=0.5)(image)
        diff = out.astype(int) - image.astype(int)
        if (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all():
            seen.add("split")  # one channel as a gray image
            assert any((out[..., 0] == image[..., c]).all() for c in range(3))
        else:
            changed = [c for c in range(3) if diff[..., c].any()]
            assert len(changed) == 1 and len(np.unique(diff[..., changed[0]])) == 1  # one channel, one constant
            seen.add("shift")
    assert seen == {"split", "shift"}


def _mean_shape_error(train_dir, test_dir):
    from shapekit.io import load_landmark_set

    train = load_landmark_set(train_dir)
    test = load_landmark_set(test_dir)
    relative = np.stack([r.points / [r.width, r.height] for r in train.records]).mean(0)
    guess = np.stack([relative * [r.width, r.height] for r in test.records])
    true = np.stack([r.points for r in test.records])
    return np.linalg.norm(guess - true, axis=-1).mean()


def test_regression_cnn_learns_beyond_the_mean_shape(synthetic_split, tmp_path):
    run = tmp_path / "run"
    main(["train", "--task", "regress", "--data", str(synthetic_split[0]), "--out", str(run), "--epochs", "100",
          "--batch-size", "8", "--opt", "input_width=64", "--opt", "input_height=56", "--opt", "hidden=256"])
    main(["evaluate", "--model", str(run / "best.ckpt"), "--data", str(synthetic_split[1]), "--json",
          str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    baseline = _mean_shape_error(*synthetic_split)
    assert report["mean_px"] < 0.75 * baseline, (report["mean_px"], baseline)
    meta = torch.load(run / "best.ckpt", weights_only=False)["shapekit"]["meta"]
    assert meta["input_shape"] == [64, 56]
    # The ONNX export keeps a dynamic batch (batches of 8 here): the same errors as PyTorch, both in fp32 (on a
    # CPU with bf16, PyTorch would otherwise run in bf16).
    for engine in ("torch", "onnx"):
        main(["evaluate", "--model", str(run / "best.ckpt"), "--data", str(synthetic_split[1]), "--engine", engine,
              "--precision", "32", "--json", str(tmp_path / f"{engine}.json")])
    by_engine = [json.loads((tmp_path / f"{e}.json").read_text())["per_image_mean_px"] for e in ("torch", "onnx")]
    assert len(by_engine[0]) > 8 and np.allclose(by_engine[0], by_engine[1], atol=1e-2)


def _three_landmark_copy(source, target):
    """The synthetic dataset keeping landmarks 0, 3 and 6 only (another 'part' with fewer landmarks)."""
    import shutil

    shutil.copytree(source / "images", target / "images", symlinks=True)
    specimens = read_tps(source / "landmarks.tps")
    for s in specimens:
        s.points = s.points[[0, 3, 6]]
    tps.write_tps(target / "landmarks.tps", specimens)
    return target


def test_landmark_map_remaps_output_rows(trained_run, synthetic_split, tmp_path):
    from shapekit.config import RunConfig
    from shapekit.engine.checkpoint import model_state, read_checkpoint
    from shapekit.engine.trainer import _init_from
    from shapekit.tasks import get_task

    data = _three_landmark_copy(synthetic_split[0], tmp_path / "three")
    config = RunConfig(task="landmarks", data=data, out=tmp_path / "x", input_size=128, encoder_weights="none",
                       landmark_map="0:0,3:1")
    task = get_task("landmarks")(config)
    task.setup()
    model = task.build_model(pretrained=False)
    fresh_row = model.state_dict()["head.weight"][2].clone()
    _init_from(task, model, trained_run / "best.ckpt", None)
    old = model_state(read_checkpoint(trained_run / "best.ckpt"))
    new = model.state_dict()
    assert torch.equal(new["head.weight"][0], old["head.weight"][0])
    assert torch.equal(new["head.weight"][1], old["head.weight"][3])
    assert torch.equal(new["head.weight"][2], fresh_row)  # unmapped: starts fresh
    assert torch.equal(new["encoder.features.3.conv.1.0.weight"], old["encoder.features.3.conv.1.0.weight"])


@pytest.mark.parametrize("spec, words", [("0:0,9:1", "old landmark 9 out of range"),
                                         ("0:0,1:0", "new landmark 0 is fed twice"),
                                         ("0:5", "new landmark 5 out of range"),
                                         ("a:b", "is not old:new")])
def test_landmark_map_errors_are_one_line(trained_run, synthetic_split, tmp_path, capsys, spec, words):
    data = _three_landmark_copy(synthetic_split[0], tmp_path / "three")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(data), "--out", str(tmp_path / "ft"), "--epochs", "1", "--input-size", "128",
              "--init-from", str(trained_run / "best.ckpt"), "--landmark-map", spec])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_rounds_predict_every_image_once_out_of_fold(tmp_path):
    from shapekit.io import load_landmark_set
    from shapekit.synthetic import make_landmark_dataset

    data = make_landmark_dataset(tmp_path / "data", n_images=18, width=96, height=80, seed=9)
    main(["evaluate", "--rounds", "3", "--task", "landmarks", "--data", str(data), "--out", str(tmp_path / "cv"),
          "--epochs", "2", "--input-size", "64", "--json", str(tmp_path / "cv.json")])
    report = json.loads((tmp_path / "cv.json").read_text())
    assert len(report["rounds"]) == 3 and sum(r["n_images"] for r in report["rounds"]) == 18
    assert len(report["rounds"][0]["per_landmark_mean_px"]) == 7
    oof = read_tps(tmp_path / "cv" / "out_of_fold.tps")
    assert sorted(s.image for s in oof) == sorted(p.name for p in (data / "images").iterdir())
    for k in range(1, 4):
        trained_on = {r.image_path.name for r in load_landmark_set(tmp_path / "cv" / f"round_{k}" / "data" / "train").records}
        tested_on = {r.image_path.name for r in load_landmark_set(tmp_path / "cv" / f"round_{k}" / "data" / "test").records}
        assert not trained_on & tested_on and len(trained_on | tested_on) == 18


def _shapes(rng, count, mean):
    shapes, scales = [], []
    for _ in range(count):
        angle = rng.uniform(-1, 1)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        size = rng.uniform(50, 150)
        shapes.append((mean + rng.normal(0, 0.02, mean.shape)) @ rotation.T * size + rng.uniform(0, 300, 2))
        scales.append(rng.uniform(0.01, 0.02))
    return shapes, scales


def test_gpa_removes_position_size_and_rotation():
    rng = np.random.default_rng(0)
    mean = np.array([[0, 0], [1, 0], [1.2, 1], [0.3, 1.4], [-0.2, 0.7]], float)
    shapes, _ = _shapes(rng, 30, mean)
    aligned, consensus = gpa(np.stack(shapes))
    assert np.allclose(centroid_size(aligned), 1)
    assert max(procrustes_distance(s, mean) for s in aligned) < 0.1
    assert procrustes_distance(consensus, mean) < 0.01


def test_shape_analysis_compares_manual_and_predicted(tmp_path):
    rng = np.random.default_rng(1)
    mean = np.array([[0, 0], [1, 0], [1.2, 1], [0.3, 1.4], [-0.2, 0.7]], float)
    shapes, scales = _shapes(rng, 25, mean)
    manual = [tps.TpsSpecimen(s, image=f"{k}.jpg", id=str(k), scale=c) for k, (s, c) in enumerate(zip(shapes, scales))]
    close = [tps.TpsSpecimen(s + rng.normal(0, 0.3, s.shape), image=f"{k}.jpg", scale=c)
             for k, (s, c) in enumerate(zip(shapes, scales))]
    tps.write_tps(tmp_path / "manual.tps", manual)
    tps.write_tps(tmp_path / "pred.tps", close)
    assert read_tps(tmp_path / "manual.tps")[3].scale == pytest.approx(scales[3])  # SCALE= round trip
    main(["shape-analysis", str(tmp_path / "manual.tps"), "--compare", str(tmp_path / "pred.tps"),
          "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "shape_analysis.json").read_text())
    assert report["centroid_size_units"] == "SCALE units"
    expected = np.mean([centroid_size(s) * c for s, c in zip(shapes, scales)])
    assert report["centroid_size_by_group"]["manual"] == pytest.approx(expected)
    assert report["procrustes_distance_between_means"] < 0.01
    assert report["paired_specimens"] == 25 and report["paired_pc1_correlation"] > 0.9
    assert (tmp_path / "out" / "shape_analysis.png").is_file() and (tmp_path / "out" / "shape_scores.csv").is_file()

    shifted = [tps.TpsSpecimen(s + np.array([[0, 0], [0, 0], [30, 0], [0, 0], [0, 0]]) * (centroid_size(s) / 100),
                               image=f"{k}.jpg") for k, s in enumerate(shapes)]
    tps.write_tps(tmp_path / "shifted.tps", shifted)
    main(["shape-analysis", str(tmp_path / "manual.tps"), "--compare", str(tmp_path / "shifted.tps"),
          "--out", str(tmp_path / "out2")])
    moved = json.loads((tmp_path / "out2" / "shape_analysis.json").read_text())
    assert moved["procrustes_distance_between_means"] > 10 * report["procrustes_distance_between_means"]


def test_parse_errors_in_shape_analysis(tmp_path):
    path = tmp_path / "mixed.tps"
    path.write_text("LM=2\n0 0\n1 1\nLM=3\n0 0\n1 1\n2 2\n")
    with pytest.raises(ShapekitError, match="different landmark counts"):
        from shapekit.shape_analysis import analyse
        analyse(path, tmp_path / "o")
