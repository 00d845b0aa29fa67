"""Coarse-to-fine landmark refinement (crops of the original pixels) and test-time augmentation."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from shapekit.cli import main
from shapekit.config import RunConfig
from shapekit.crops import crop_to_image, image_tensor, image_to_crop, sample_crops
from shapekit.engine import Runtime, load_model
from shapekit.engine.checkpoint import save_model_checkpoint
from shapekit.engine.onnx import export_onnx, load_predictor
from shapekit.tasks.landmarks import LandmarkTask
from shapekit.transforms import AugmentOptions, invert_letterbox_points
from shapekit.tta import TestTimeAugmentation, flip_permutation

RUNTIME = Runtime.create("cpu", "32")


def _task(num_landmarks=3, refine=True, head="heatmap", flip_pairs=(), size=64) -> LandmarkTask:
    meta = {"landmark_names": [f"lm{k}" for k in range(num_landmarks)], "num_landmarks": num_landmarks,
            "flip_pairs": [list(p) for p in flip_pairs], "y_origin": "top", "input_shape": [size, size],
            "pad_fill": 0, "refine": {"crop": 32, "cells": 8.0, "head": head} if refine else None}
    return LandmarkTask(RunConfig(input_size=size, encoder_weights="none", options={"refine_head": head}), meta)


def _scramble_refiner(model: nn.Module, seed: int = 0) -> None:
    """Large random head weights: a refiner that moves points as far as it can."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.refiner.head.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 300)


def test_crop_sampling_and_targets_agree_with_rotation_and_zoom():
    # One bright pixel; wherever image_to_crop says it is in the crop, the crop's brightest pixel must be.
    image = np.zeros((90, 120, 3), np.uint8)
    image[40, 70] = 255
    tensor = image_tensor(image)
    point = torch.tensor([[70.0, 40.0]])
    for centre, step, angle in (([66.0, 43.0], 0.5, None), ([73.0, 37.0], 0.5, torch.tensor([0.6])),
                                ([70.5, 41.0], 0.25, torch.tensor([-1.2]))):
        centre = torch.tensor([centre])
        crop = sample_crops(tensor, centre, step, 32, angle)[0, 0]
        expected = image_to_crop(point, centre, step, 32, angle)[0]
        peak = divmod(int(crop.argmax()), 32)
        assert abs(peak[1] - float(expected[0])) <= 1.0 and abs(peak[0] - float(expected[1])) <= 1.0
    # Unrotated: crop pixels -> original pixels is the exact inverse.
    back = crop_to_image(image_to_crop(point, torch.tensor([[60.0, 50.0]]), 1.5, 32), torch.tensor([[60.0, 50.0]]),
                         1.5, 32)
    assert torch.allclose(back, point)


@pytest.mark.parametrize("head", ["heatmap", "offset"])
def test_refinement_never_leaves_its_crop(head):
    task = _task(head=head)
    model = task.build_model(pretrained=False).eval()
    _scramble_refiner(model)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (120, 200, 3), dtype=np.uint8) for _ in range(2)]
    letterboxes = np.array([[64 / 200, 64 / 200, 0, 12], [64 / 200, 64 / 200, 0, 12]])
    centres = torch.from_numpy(rng.uniform([10, 10], [190, 110], (2, 3, 2)))
    with torch.no_grad():
        refined = task.refine_in_crops(model.refine, images, centres, letterboxes)
    half = (task.crop_step(letterboxes) * 32 / 2)[:, None, None]
    moved = (refined - centres.float()).abs()
    assert (moved <= half + 1e-4).all()
    assert moved.max() > 0.2 * half.max()  # the scrambled refiner really moves points (the bound is not vacuous)


def test_landmark_at_the_image_border_refines_without_error():
    task = _task()
    model = task.build_model(pretrained=False).eval()
    _scramble_refiner(model, 1)
    image = np.full((100, 150, 3), 200, np.uint8)
    letterbox = np.array([[64 / 150, 64 / 150, 0, 11]])
    corners = torch.tensor([[[0.0, 0.0], [149.0, 99.0], [-0.5, 50.0]]])
    with torch.no_grad():
        refined = task.refine_in_crops(model.refine, [image], corners, letterbox)
    assert torch.isfinite(refined).all()
    half = float(task.crop_step(letterbox)[0]) * 32 / 2
    assert ((refined - corners).abs() <= half + 1e-4).all()


@pytest.mark.parametrize("zoom", [1.0, 0.5])
def test_each_refiner_pass_starts_from_the_last(zoom):
    """--opt refine_passes=2 re-centres the crops on the first pass's points and refines again, in a crop
    ``refine_zoom`` times the first one's span (so a finer pass moves a point at most half its own crop)."""
    task = _task()
    task.options = task.options.model_copy(update={"refine_passes": 2, "refine_zoom": zoom})
    model = task.build_model(pretrained=False).eval()
    _scramble_refiner(model, 2)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    letterbox = np.array([[64 / 200, 64 / 200, 0, 12]])
    coarse = rng.uniform([20, 20], [180, 100], (1, 3, 2))
    twice = task.refine_points(model, None, [image], coarse, letterbox, RUNTIME)
    with torch.no_grad():
        first = task.refine_in_crops(model.refine, [image], torch.from_numpy(coarse), letterbox)
        second = task.refine_in_crops(model.refine, [image], first, letterbox, zoom=zoom)
    np.testing.assert_allclose(twice, second.double().numpy(), atol=1e-3)
    moved = (second - first).abs().max()
    half_crop = float(task.crop_step(letterbox)[0]) * 32 / 2
    assert 0.1 * half_crop * zoom < moved <= half_crop * zoom + 1e-4  # it really ran, inside its (finer) crop


def test_zoomed_training_crops_come_at_both_scales():
    """With refine_zoom, about half of the training crops are finer by that factor (the later passes' crops)."""
    task = _task(num_landmarks=40)
    task.options = task.options.model_copy(update={"refine_zoom": 0.5, "augment": AugmentOptions(enabled=False)})
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (160, 1, 3))  # brightness = x: slope 1 / px
    truth = np.random.default_rng(0).uniform([70, 60], [186, 100], (40, 2))
    samples = type("Samples", (), {"originals": [truth], "original_images": [ramp],
                                   "letterboxes": np.array([[64 / 256, 64 / 256, 0, 12]])})()
    torch.manual_seed(0)
    crops = task._training_crops(samples, 0)["crops"][:, 0]
    slope = (crops[:, 16, 20] - crops[:, 16, 12]).numpy() * 255 / 8  # original pixels per crop pixel
    step = float(task.crop_step(samples.letterboxes)[0])
    finer = np.isclose(slope, step * 0.5, rtol=0.05)
    assert (finer | np.isclose(slope, step, rtol=0.05)).all()
    assert 0.2 < finer.mean() < 0.8


class HalfImageDetector(nn.Module):
    """A stand-in for a model trained with flips: channel 0 fires on bright pixels in the left half of its
    input, channel 1 in the right half (so channel 0 is 'the landmark on the left', whichever it is)."""

    def forward(self, images):
        intensity = nn.functional.avg_pool2d(images.mean(1, keepdim=True), 4)
        width = intensity.shape[-1]
        left = torch.zeros_like(intensity)
        left[..., : width // 2] = 1
        return torch.cat([intensity * left, intensity * (1 - left)], 1) * 40 - 20


def _two_dots():
    image = np.zeros((64, 64, 3), np.uint8)
    truth = np.array([[17.5, 13.5], [45.5, 49.5]])  # left dot high, right dot low (not mirror images)
    for x, y in truth:
        image[int(y) - 1:int(y) + 3, int(x) - 1:int(x) + 3] = 255
    return image, truth


def test_tta_flip_swaps_left_right_landmarks():
    image, truth = _two_dots()
    task = _task(num_landmarks=2, refine=False, flip_pairs=[(0, 1)])
    assert task.test_time_augmentation().flip
    plain, _ = task.infer_images(HalfImageDetector(), [image], RUNTIME)
    averaged, _ = task.infer_images(HalfImageDetector(), [image], RUNTIME, tta=True)
    assert np.abs(plain[0] - truth).max() < 1.5
    assert np.abs(averaged[0] - truth).max() < 1.5
    # In the averaged maps, channel 0 holds only the left dot and channel 1 only the right one; without the
    # swap the mirrored view would put each dot into the other channel (a logit near 0 instead of -20).
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    cells = [(int(y // 4), int(x // 4)) for x, y in truth]
    for tta, expect_clean in ((task.test_time_augmentation(), True),
                              (TestTimeAugmentation(flip=True, scales=(), flip_order=None), False)):
        raw = tta(HalfImageDetector(), tensor)
        foreign = max(float(raw[0, 0][cells[1]]), float(raw[0, 1][cells[0]]))
        assert (foreign < -15) == expect_clean, foreign


def test_tta_without_flip_pairs_uses_zooms_only_and_keeps_positions():
    image, truth = _two_dots()
    task = _task(num_landmarks=2, refine=False)
    tta = task.test_time_augmentation()
    assert not tta.flip and tta.views == [(False, 1.0), (False, 0.9), (False, 1.1)]
    averaged, _ = task.infer_images(HalfImageDetector(), [image], RUNTIME, tta=True)
    assert np.abs(averaged[0] - truth).max() < 1.5
    assert flip_permutation(4, [(0, 3)]) == [3, 1, 2, 0]


def test_crop_votes_map_each_shifted_crop_back_to_the_image():
    # A "refiner" that finds the brightest pixel of each crop: every shifted crop sees the one dot at a
    # different crop position, and each must map back to the same original pixel. Averaging shifted crops
    # whose shift is not undone would land a whole coarse cell off.
    task = _task(num_landmarks=1)
    image = np.zeros((120, 160, 3), np.uint8)
    image[61, 83] = 255
    letterbox = np.array([[64 / 160, 64 / 160, 0, 8]])
    calls = []

    def brightest(crops):
        calls.append(crops.shape[0])
        flat = crops[:, :, 0].flatten(2).argmax(-1)
        return torch.stack([flat % crops.shape[-1], flat // crops.shape[-1]], -1).float()

    shifts = task.test_time_augmentation().crop_shifts
    assert len(shifts) == 5 and _task(refine=False).test_time_augmentation().crop_shifts == ()
    cell = float(task.crop_step(letterbox)[0]) * 32 / 8
    centre = torch.tensor([[[83.0 - 1.3 * cell, 61.0 + 0.4 * cell]]])  # the dot inside every shifted crop
    voted = task.refine_in_crops(brightest, [image], centre, letterbox, shifts)
    assert calls == [5]  # all votes in one refiner call
    step = float(task.crop_step(letterbox)[0])
    assert np.abs(voted[0, 0].numpy() - [83, 61]).max() <= step  # within a crop pixel of the dot
    single = task.refine_in_crops(brightest, [image], centre, letterbox)
    assert np.abs(single[0, 0].numpy() - [83, 61]).max() <= step


def test_onnx_export_carries_the_refiner(tmp_path):
    task = _task(num_landmarks=3)
    model = task.build_model(pretrained=False).eval()
    _scramble_refiner(model, 2)
    checkpoint = save_model_checkpoint(task, model, tmp_path / "refined.ckpt")
    onnx_path = export_onnx(checkpoint, tmp_path / "refined.onnx")
    onnx_task, _, forward = load_predictor(onnx_path)
    assert forward.refine is not None
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (90, 130, 3), dtype=np.uint8), rng.integers(0, 255, (70, 50, 3), dtype=np.uint8)]
    loaded_task, loaded = load_model(checkpoint)
    torch_points, _ = loaded_task.infer_images(loaded, images, RUNTIME)
    coarse, _ = loaded_task.infer_images(loaded, images, RUNTIME, refine=False)
    onnx_points, _ = onnx_task.infer_images(None, images, RUNTIME, forward=forward)
    assert np.abs(torch_points - coarse).max() > 1.0  # refinement changed the points...
    assert np.abs(torch_points - onnx_points).max() < 1e-2  # ...and the ONNX export does the same
    # Crop votes (five crops per landmark in one refiner call) run through the export's dynamic crop batch.
    votes = TestTimeAugmentation(scales=(), crop_shifts=loaded_task.test_time_augmentation().crop_shifts)
    torch_votes, _ = loaded_task.infer_images(loaded, images, RUNTIME, tta=votes)
    onnx_votes, _ = onnx_task.infer_images(None, images, RUNTIME, forward=forward, tta=votes)
    assert np.abs(torch_votes - torch_points).max() > 0.1
    assert np.abs(torch_votes - onnx_votes).max() < 1e-2


def test_training_with_and_without_refinement(tmp_path, capsys):
    from shapekit.synthetic import make_landmark_dataset

    data = make_landmark_dataset(tmp_path / "data", n_images=12, seed=4)
    runs = {}
    for refine in ("true", "false"):
        out = tmp_path / f"run_{refine}"
        main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--input-size", "64",
              "--batch-size", "4", "--opt", f"refine={refine}"])
        runs[refine] = out
    ckpt = torch.load(runs["true"] / "best.ckpt", weights_only=False)
    assert any(k.startswith("model.refiner.") for k in ckpt["state_dict"])
    header = (runs["true"] / "metrics.csv").read_text().splitlines()[0]
    assert "val_coarse_error_pct" in header and "train_refine_loss" in header
    plain = torch.load(runs["false"] / "best.ckpt", weights_only=False)
    assert plain["shapekit"]["meta"]["refine"] is None
    assert not any(".refiner." in k for k in plain["state_dict"])
    # refine=false predicts through the CLI, with and without TTA.
    for flag in ([], ["--tta"]):
        out = tmp_path / f"eval{len(flag)}.json"
        main(["evaluate", "--model", str(runs["false"] / "best.ckpt"), "--data", str(data), "--json", str(out), *flag])
        assert json.loads(out.read_text())["n_images"] == 12
    # --crop-votes: the refined model averages shifted crops (points move a little); a coarse model has none.
    reports = {}
    for flag in ([], ["--crop-votes"]):
        out = tmp_path / f"votes{len(flag)}.json"
        main(["evaluate", "--model", str(runs["true"] / "best.ckpt"), "--data", str(data), "--json", str(out),
              "--precision", "32", *flag])
        reports[bool(flag)] = json.loads(out.read_text())
    assert reports[True]["n_images"] == 12 and reports[True]["mean_px"] != reports[False]["mean_px"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(runs["false"] / "best.ckpt"), "--data", str(data), "--crop-votes"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "no refinement stage" in err and len(err.splitlines()) == 1, err


def _turn_half_to_portrait(data):
    """Turn every other image of a synthetic landscape set a quarter clockwise (points follow)."""
    from shapekit.io import tps
    from shapekit.io.atomic import save_image
    from shapekit.io.images import read_image

    specimens = tps.read_tps(data / "landmarks.tps")
    for k, specimen in enumerate(specimens):
        if k % 2:
            continue
        image = read_image(data / "images" / specimen.image)
        height = image.shape[0]
        points = tps.to_top_origin(specimen.points, height)
        # np.rot90(k=-1) sends pixel (x, y) to (H - 1 - y, x)
        turned = np.stack([height - 1 - points[:, 1], points[:, 0]], 1)
        save_image(data / "images" / specimen.image, np.ascontiguousarray(np.rot90(image, -1)))
        specimen.points = tps.from_top_origin(turned, image.shape[1])
    tps.write_tps(data / "landmarks.tps", specimens)
    return data


def test_non_square_input_turns_portrait_images_and_maps_points_back(tmp_path):
    from shapekit.io.images import read_image
    from shapekit.synthetic import make_landmark_dataset
    from shapekit.tasks._keypoints import KeypointSamples

    data = _turn_half_to_portrait(make_landmark_dataset(tmp_path / "data", n_images=8, seed=2))
    out = tmp_path / "run"
    main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "4",
          "--opt", "input_width=96", "--opt", "input_height=64", "--opt", "turn_to_fit=true"])
    task, model = load_model(out / "best.ckpt")
    assert task.input_shape == (96, 64) and task.turn_to_fit
    # Training samples: portrait photos are turned to fill the landscape input, and map back exactly.
    records = task.load_landmarks(data).records
    samples = KeypointSamples(task.load_landmarks(data), task.input_shape, turn_to_fit=True)
    boxes = np.stack(samples.letterboxes)
    assert {bool(b[4]) for b in boxes} == {True, False}
    for image, points, box, record in zip(samples.images, samples.points, boxes, records):
        assert image.shape == (64, 96, 3)
        assert box[0] == box[1] == 0.5  # 160 x 128 either way round (0.4 if portraits were not turned)
        np.testing.assert_allclose(invert_letterbox_points(points[None], box[None])[0], record.points, atol=1e-6)
    # Prediction: a portrait photo gives the landscape photo's points, turned back into its own frame.
    landscape = read_image(next(r for r in records if r.width > r.height).image_path)
    portrait = np.ascontiguousarray(np.rot90(landscape, -1))
    points, _ = task.infer_images(model, [landscape, portrait], RUNTIME, refine=False)
    height = landscape.shape[0]
    expected = np.stack([height - 1 - points[0, :, 1], points[0, :, 0]], 1)
    np.testing.assert_allclose(points[1], expected, atol=1e-3)
    # Without the turn the same portrait is letterboxed small and predicts elsewhere.
    task.meta["turn_to_fit"] = False
    unturned, _ = task.infer_images(model, [portrait], RUNTIME, refine=False)
    assert np.abs(unturned[0] - expected).max() > 0.5
