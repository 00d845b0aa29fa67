"""--engine auto: onnxruntime (from a cached export) for fp32 on the CPU, PyTorch elsewhere."""

import numpy as np
import pytest
import torch

from shapekit.config import RunConfig
from shapekit.engine import Runtime, load_model
from shapekit.engine.checkpoint import save_model_checkpoint
from shapekit.engine.onnx import load_predictor, prefers_onnx
from shapekit.tasks import get_task
from shapekit.tasks.landmarks import LandmarkTask

FP32 = Runtime.create("cpu", "32")


def _checkpoint(path, seed: int = 0):
    meta = {"landmark_names": ["a", "b", "c"], "num_landmarks": 3, "flip_pairs": [], "y_origin": "top",
            "input_shape": [64, 64], "pad_fill": 0, "refine": {"crop": 32, "cells": 8.0, "head": "heatmap"}}
    task = LandmarkTask(RunConfig(input_size=64, encoder_weights="none"), meta)
    torch.manual_seed(seed)
    model = task.build_model(pretrained=False).eval()
    return save_model_checkpoint(task, model, path)


def _images():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 255, (90, 130, 3), dtype=np.uint8), rng.integers(0, 255, (60, 40, 3), dtype=np.uint8)]


def test_auto_runs_a_cached_onnx_export_on_an_fp32_cpu(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHAPEKIT_CACHE_DIR", str(cache))
    checkpoint = _checkpoint(tmp_path / "model.ckpt")
    task, model, forward = load_predictor(checkpoint, "auto", runtime=FP32)
    assert model is None and forward is not None and forward.refine is not None
    exports = list(cache.rglob("*.onnx"))
    assert len(exports) == 1
    stamp = exports[0].stat().st_mtime_ns
    load_predictor(checkpoint, "auto", runtime=FP32)  # the second load reuses the export
    assert list(cache.rglob("*.onnx")) == exports and exports[0].stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.onnx"))  # nothing written beside the checkpoint
    torch_task, torch_model = load_model(checkpoint)
    expected, _ = torch_task.infer_images(torch_model, _images(), FP32)
    got, _ = task.infer_images(None, _images(), FP32, forward=forward)
    assert np.abs(expected - got).max() < 1e-2  # same points as PyTorch, refinement included


def test_a_changed_checkpoint_gets_its_own_export(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHAPEKIT_CACHE_DIR", str(cache))
    first = _checkpoint(tmp_path / "model.ckpt", seed=0)
    task, _, forward = load_predictor(first, "auto", runtime=FP32)
    points_first, _ = task.infer_images(None, _images(), FP32, forward=forward)
    _checkpoint(first, seed=1)  # retrained in place: same path, other weights
    task, _, forward = load_predictor(first, "auto", runtime=FP32)
    assert len(list(cache.rglob("*.onnx"))) == 2
    torch_task, torch_model = load_model(first)
    expected, _ = torch_task.infer_images(torch_model, _images(), FP32)
    got, _ = task.infer_images(None, _images(), FP32, forward=forward)
    assert np.abs(expected - got).max() < 1e-2 and np.abs(points_first - got).max() > 1e-3


def test_auto_keeps_pytorch_for_bf16_explicit_torch_and_the_mesh_task(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHAPEKIT_CACHE_DIR", str(cache))
    checkpoint = _checkpoint(tmp_path / "model.ckpt")
    for engine, runtime in (("auto", Runtime.create("cpu", "bf16-mixed")), ("torch", FP32)):
        _, model, forward = load_predictor(checkpoint, engine, runtime=runtime)
        assert model is not None and forward is None
    assert not cache.exists() or not list(cache.rglob("*.onnx"))
    assert prefers_onnx(get_task("landmarks"), FP32)
    assert not prefers_onnx(get_task("mesh"), FP32)  # its prediction is not one network pass


def test_an_unwritable_cache_falls_back_to_pytorch(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("SHAPEKIT_CACHE_DIR", str(blocker))
    checkpoint = _checkpoint(tmp_path / "model.ckpt")
    with pytest.warns(UserWarning, match="running in PyTorch"):
        _, model, forward = load_predictor(checkpoint, "auto", runtime=FP32)
    assert model is not None and forward is None
