"""`--minutes`: a run sized to a wall-time budget from its own epoch times."""

import csv
from pathlib import Path

import pytest
import torch

from shapekit.cli import main
from shapekit.engine import read_checkpoint
from shapekit.engine.checkpoint import unfinished

BASE_LR = 1e-3


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from shapekit.synthetic import make_landmark_dataset

    return make_landmark_dataset(tmp_path_factory.mktemp("budget") / "data", n_images=24, width=96, height=80, seed=2)


def _train(data: Path, out: Path, *extra: str) -> list[dict]:
    main(["train", "--data", str(data), "--out", str(out), "--input-size", "64", "--batch-size", "4",
          "--lr", str(BASE_LR), "--opt", "refine=false", "--precision", "32", *extra])
    with open(out / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_time_budget_sizes_the_epochs_and_ends_the_schedule_with_them(tiny_dataset, tmp_path):
    budget_s = 15.0
    rows = _train(tiny_dataset, tmp_path / "run", "--minutes", str(budget_s / 60))
    state = torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)["callbacks"]["FitToMinutes"]
    lrs = [float(r["lr"]) for r in rows]
    # The run fills its budget (an epoch here is well under a second) instead of the default epoch count; the
    # time spent (kept in the checkpoint for --resume) covers whole epochs including their checkpoints...
    assert 0.75 * budget_s <= state["spent"] <= 1.25 * budget_s, (len(rows), state)
    assert state["epochs"] == len(rows) and sum(float(r["seconds"]) for r in rows) <= state["spent"]
    # ...and the cosine schedule was stretched to end with the last epoch, not cut off mid-way.
    assert lrs[-1] <= 0.03 * BASE_LR and lrs[len(lrs) // 3] >= 0.5 * BASE_LR, lrs
    # Re-estimates only nudge it: after the warm-up peak the rate never climbs back by more than a few per cent.
    peak = lrs.index(max(lrs))
    assert all(later <= 1.05 * earlier for earlier, later in zip(lrs[peak:], lrs[peak + 1:])), lrs

    # --resume restores the epoch count and the time spent: a finished budget run has nothing left to train
    # (a fresh budget would start sizing again and train on past the epochs chosen).
    main(["train", "--out", str(tmp_path / "run"), "--resume"])
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    assert not unfinished(read_checkpoint(tmp_path / "run" / "last.ckpt"))


def test_a_budget_run_cut_short_counts_as_unfinished(tiny_dataset, tmp_path):
    # --max-minutes stops it after a tenth of its budget: cross-validation rounds and benchmarks must resume it.
    _train(tiny_dataset, tmp_path / "cut", "--minutes", "0.5", "--max-minutes", "0.05")
    assert unfinished(read_checkpoint(tmp_path / "cut" / "last.ckpt"))


def test_cross_validation_rounds_train_on_a_time_budget(tiny_dataset, tmp_path):
    command = ["evaluate", "--rounds", "2", "--task", "landmarks", "--data", str(tiny_dataset), "--out",
               str(tmp_path / "cv"), "--minutes", "0.05", "--input-size", "64", "--opt", "refine=false"]
    main(command)
    metrics = [tmp_path / "cv" / f"round_{k}" / "run" / "metrics.csv" for k in (1, 2)]
    for path in metrics:
        last = read_checkpoint(path.parent / "last.ckpt")
        assert last["shapekit"]["config"]["minutes"] == 0.05 and not unfinished(last)
    stamps = [path.stat().st_mtime_ns for path in metrics]
    main(command)  # finished rounds are kept, not trained again
    assert [path.stat().st_mtime_ns for path in metrics] == stamps


def test_epochs_cap_a_time_budget(tiny_dataset, tmp_path):
    rows = _train(tiny_dataset, tmp_path / "run", "--minutes", "5", "--epochs", "3")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[-1]["lr"]) <= 0.03 * BASE_LR
