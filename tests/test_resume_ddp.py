"""Interrupted training resumes; multi-process DDP on the CPU trains to completion."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SHAPEKIT = [sys.executable, "-m", "shapekit.cli"]


def _env():
    env = dict(os.environ, SHAPEKIT_NO_PROGRESS="1")
    return env


def _epochs(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from shapekit.synthetic import make_landmark_dataset

    return make_landmark_dataset(tmp_path_factory.mktemp("tiny") / "data", n_images=24, width=96, height=80, seed=5)


def test_killed_training_resumes_from_last_and_finishes_all_epochs(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--out", str(run), "--epochs", "6", "--input-size", "64",
            "--batch-size", "4"]
    process = subprocess.Popen(SHAPEKIT + args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (run / "metrics.csv").exists() and len(_epochs(run)) >= 2 and (run / "last.ckpt").exists():
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be interrupted: " + process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)  # the harshest interruption: no chance to clean up
    process.wait()
    done_before = _epochs(run)
    assert 2 <= len(done_before) < 6
    steps_per_epoch = torch.load(run / "last.ckpt", weights_only=False)["global_step"] // (
        torch.load(run / "last.ckpt", weights_only=False)["epoch"] + 1)

    result = subprocess.run(SHAPEKIT + ["train", "--out", str(run), "--resume"], env=_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert _epochs(run) == list(range(6))  # each epoch logged once, none repeated or skipped
    last = torch.load(run / "last.ckpt", weights_only=False)
    assert last["epoch"] == 5 and last["global_step"] == 6 * steps_per_epoch
    assert (run / "best.ckpt").is_file()


def _losses(run: Path) -> list[tuple[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return [(row["train_loss"], row["val_loss"]) for row in csv.DictReader(handle)]


def test_the_same_seed_trains_the_same_model(tiny_dataset, tmp_path):
    """--seed fixes initialisation, validation split and augmentation (albumentations' own generator too)."""
    from shapekit.cli import main

    runs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / name), "--epochs", "2", "--input-size", "64",
              "--batch-size", "4", "--seed", seed, "--opt", "refine=false", "--precision", "32"])
        runs[name] = _losses(tmp_path / name)
    assert runs["a"] == runs["b"] and runs["a"] != runs["c"]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_to_completion(tiny_dataset, tmp_path):
    run = tmp_path / "ddp"
    args = ["train", "--data", str(tiny_dataset), "--out", str(run), "--epochs", "2", "--input-size", "64",
            "--batch-size", "4", "--device", "cpu", "--devices", "2", "--strategy", "ddp"]
    result = subprocess.run(SHAPEKIT + args, env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _epochs(run) == [0, 1]
    last = torch.load(run / "last.ckpt", weights_only=False)
    # 20 training images, 2 processes x batch 4, drop_last: 2 optimiser steps per epoch, 4 in all
    # (one process alone would take 5 per epoch).
    assert last["global_step"] == 4
    assert last["shapekit"]["meta"]["num_landmarks"] == 7
