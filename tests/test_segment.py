"""Segment task: data checks, training through the shared engine, evaluation, outputs, ONNX parity."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shapekit.cli import main
from shapekit.errors import InputError
from shapekit.io.masks import load_mask_set, read_mask
from shapekit.synthetic import make_mask_dataset


@pytest.fixture(scope="module")
def binary_data(tmp_path_factory):
    return make_mask_dataset(tmp_path_factory.mktemp("seg") / "binary", n_images=48, seed=2)


@pytest.fixture(scope="module")
def binary_run(binary_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("segrun") / "run"
    main(["train", "--task", "segment", "--data", str(binary_data), "--out", str(out), "--epochs", "8",
          "--input-size", "128", "--batch-size", "8", "--lr", "0.002"])
    return out


def test_mask_of_other_size_is_a_one_line_error(tmp_path, binary_data):
    data = tmp_path / "d"
    shutil.copytree(binary_data, data)
    bad = sorted((data / "masks").iterdir())[3]
    Image.new("L", (50, 40)).save(bad)
    with pytest.raises(InputError) as info:
        load_mask_set(data)
    assert str(info.value).startswith(str(bad)) and "mask is 50x40 but its image" in str(info.value)


def test_empty_masks_folder(tmp_path, binary_data):
    data = tmp_path / "d"
    shutil.copytree(binary_data / "images", data / "images")
    (data / "masks").mkdir()
    with pytest.raises(InputError, match="masks: is empty"):
        load_mask_set(data)


def test_label_id_beyond_classes_txt(tmp_path, capsys):
    data = make_mask_dataset(tmp_path / "multi", n_images=6, seed=3, multiclass=True)
    bad = sorted((data / "labels").iterdir())[2]
    labels = np.asarray(Image.open(bad)).copy()
    labels[0, 0] = 7
    Image.fromarray(labels).save(bad)
    with pytest.raises(InputError, match=r"label id 7 is beyond classes.txt \(ids 0..2\)"):
        read_mask(bad, "multiclass", 3)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", "segment", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}") and len(err.splitlines()) == 1


def test_binary_training_evaluation_and_outputs(binary_run, binary_data, tmp_path):
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "loss_curves.png", "val_masks.png"):
        assert (binary_run / name).is_file(), name
    report_path = tmp_path / "seg.json"
    main(["evaluate", "--model", str(binary_run / "best.ckpt"), "--data", str(binary_data), "--json", str(report_path),
          "--out", str(tmp_path / "fig")])
    report = json.loads(report_path.read_text())
    for key in ("n_images", "iou_mean", "iou_pooled", "dice_mean", "pixel_accuracy_mean"):
        assert key in report
    assert report["n_images"] == 48 and report["iou_mean"] > 0.8, report["iou_mean"]
    assert (tmp_path / "fig" / "worst_images.png").is_file()

    main(["predict", "--model", str(binary_run / "best.ckpt"), str(binary_data / "images"), "--out", str(tmp_path / "p")])
    name = "specimen_0005"
    mask = np.asarray(Image.open(tmp_path / "p" / "masks" / f"{name}.png"))
    cut = np.asarray(Image.open(tmp_path / "p" / "cutouts" / f"{name}.png"))
    image = np.asarray(Image.open(binary_data / "images" / f"{name}.jpg"))
    truth = np.asarray(Image.open(binary_data / "masks" / f"{name}.png")) > 0
    assert mask.shape == image.shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert cut.shape == image.shape[:2] + (4,) and ((cut[..., 3] > 0) == (mask > 0)).all()
    assert (cut[..., :3][mask > 0] == image[mask > 0]).all()
    assert ((mask > 0) & truth).sum() / ((mask > 0) | truth).sum() > 0.8
    assert (tmp_path / "p" / "overlays" / f"{name}.png").is_file()


def test_multiclass_labels_report_per_class_iou(tmp_path):
    data = make_mask_dataset(tmp_path / "multi", n_images=24, seed=4, multiclass=True)
    main(["train", "--task", "segment", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "8",
          "--input-size", "64", "--batch-size", "4", "--lr", "0.003"])
    main(["evaluate", "--model", str(tmp_path / "run" / "best.ckpt"), "--data", str(data), "--json",
          str(tmp_path / "m.json")])
    report = json.loads((tmp_path / "m.json").read_text())
    assert set(report["per_class_iou"]) == {"background", "left", "right"}
    assert 0 <= report["miou"] <= 1 and report["per_class_iou"]["background"] > 0.5


def mask_agreement(first: Path, second: Path) -> float:
    """Fraction of pixels on which two folders of predicted masks (same file names) agree."""
    agree, total = 0, 0
    for path in sorted(first.iterdir()):
        a = np.asarray(Image.open(path))
        b = np.asarray(Image.open(second / path.name))
        agree += int((a == b).sum())
        total += a.size
    assert total > 0, f"no masks in {first}"
    return agree / total


def test_onnx_export_matches_pytorch_for_masks(binary_run, binary_data, tmp_path):
    onnx_file = tmp_path / "seg.onnx"
    main(["export", "--model", str(binary_run / "best.ckpt"), "--format", "onnx", "--out", str(onnx_file)])
    images = str(binary_data / "images")
    main(["predict", "--model", str(binary_run / "best.ckpt"), images, "--out", str(tmp_path / "torch"),
          "--precision", "32", "--no-overlays"])
    main(["predict", "--model", str(onnx_file), images, "--out", str(tmp_path / "onnx"), "--no-overlays"])
    assert mask_agreement(tmp_path / "torch" / "masks", tmp_path / "onnx" / "masks") >= 0.999


def test_int8_onnx_export_keeps_masks_and_needs_calibration(binary_run, binary_data, tmp_path, capsys):
    checkpoint, images = str(binary_run / "best.ckpt"), str(binary_data / "images")
    with pytest.raises(SystemExit):
        main(["export", "--model", checkpoint, "--out", str(tmp_path / "x.onnx"), "--int8"])
    assert "--calibration" in capsys.readouterr().err
    int8_file = tmp_path / "seg-int8.onnx"
    main(["export", "--model", checkpoint, "--out", str(int8_file), "--int8", "--calibration", images,
          "--calibration-images", "8"])
    import onnx

    graph = onnx.load(str(int8_file))
    assert any(node.op_type == "QuantizeLinear" for node in graph.graph.node)  # really quantised
    main(["predict", "--model", checkpoint, images, "--out", str(tmp_path / "torch"), "--precision", "32",
          "--no-overlays"])
    main(["predict", "--model", str(int8_file), images, "--out", str(tmp_path / "int8"), "--no-overlays"])
    assert mask_agreement(tmp_path / "torch" / "masks", tmp_path / "int8" / "masks") >= 0.97


def test_onnx_landmarks_match_pytorch(trained_run, synthetic_split, tmp_path):
    from shapekit.io import read_tps

    images = str(synthetic_split[1] / "images")
    model = str(trained_run / "best.ckpt")
    main(["predict", "--model", model, images, "--out", str(tmp_path / "torch"), "--precision", "32", "--no-overlays"])
    main(["predict", "--model", model, images, "--out", str(tmp_path / "onnx"), "--engine", "onnx", "--no-overlays"])
    a = {s.image: s.points for s in read_tps(tmp_path / "torch" / "predictions.tps")}
    b = {s.image: s.points for s in read_tps(tmp_path / "onnx" / "predictions.tps")}
    assert a.keys() == b.keys()
    assert max(np.abs(a[k] - b[k]).max() for k in a) < 0.1


def test_shipped_clothing_model_on_the_astronaut_photo(tmp_path):
    """No --model: the model shipped in the package. The suit is clothing; face and wall are not."""
    from skimage import data

    from shapekit.io.atomic import save_image
    from shapekit.tasks.segment import SegmentTask

    assert SegmentTask.default_model.is_file()
    assert SegmentTask.default_model.stat().st_size <= 15 * 1024 * 1024
    assert SegmentTask.default_model.with_suffix(".md").is_file()  # model card
    photo = save_image(tmp_path / "astronaut.png", data.astronaut())
    main(["predict", "--task", "segment", str(photo), "--out", str(tmp_path / "out")])
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "astronaut.png")) > 0
    assert mask.shape == (512, 512)
    suit = mask[320:480, 60:260].mean()
    face = mask[80:180, 185:265].mean()
    wall = mask[20:120, 300:370].mean()
    assert suit > 0.8 and face < 0.1 and wall < 0.1, (suit, face, wall)
    cut = np.asarray(Image.open(tmp_path / "out" / "cutouts" / "astronaut.png"))
    assert cut.shape == (512, 512, 4) and (cut[..., 3][mask] == 255).all() and (cut[..., 3][~mask] == 0).all()
