"""Helpers shared by the benchmark scripts: machine description, tables, JSON results."""

from __future__ import annotations

import csv
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import torch
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHAPEKIT_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "bench" / "results"
WORK = REPO / "bench" / "work"  # scratch: splits, runs (git-ignored)
console = Console(highlight=False, width=160)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def command() -> str:
    return " ".join(["python"] + [str(a) for a in sys.argv])


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    console.print(table)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save_results(name: str, payload: dict) -> Path:
    from shapekit.io.atomic import write_json

    payload = {"command": command(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": machine(), **payload}
    path = write_json(RESULTS / f"{name}.json", payload)
    console.print(f"results: {path}")
    return path


def trained_epochs(run_dir: Path) -> int:
    """Epochs a finished run trained (rows of its metrics.csv)."""
    with open(run_dir / "metrics.csv", newline="") as handle:
        return len(list(csv.DictReader(handle)))


def train_throughput(config, steps: int = 10) -> float:
    """Training images (objects, for the mesh task) per second for a run configuration: real batches through
    the task's training step, backward and an Adam step, with the run's precision and memory format."""
    from torch.utils.data import DataLoader

    from shapekit.engine.runtime import Runtime
    from shapekit.tasks import get_task

    task = get_task(config.task)(config.model_copy(update={"val_fraction": 0.0}))
    train_set, _ = task.setup()
    runtime = Runtime.create(config.device, config.precision)
    model = task.build_model(pretrained=False).to(runtime.device).train()
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-5)
    times = []
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=True)
    while len(times) < steps:
        for batch in loader:
            start = time.perf_counter()
            batch = {k: runtime.prepare_input(v) if v.dim() == 4 and v.is_floating_point() else v.to(runtime.device)
                     for k, v in batch.items()}
            with runtime.autocast():
                loss, _ = task.training_step(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - start)
            if len(times) >= steps:
                break
    return config.batch_size / float(np.median(times[1:]))


def garment_split(folder: Path | None = None, out: Path | None = None) -> tuple[Path, Path]:
    """The fixed garments-fld split used by the shipped garment landmark model and bench/garment.py:
    images sorted by file name, every 5th one starting from the 3rd held out (train/, test/ folders)."""
    from shapekit.io.landmark_dataset import _annotated_items, write_subsets

    folder = folder or DATA / "garments-fld"
    out = out or WORK / "garments-fld" / "split"
    _, _, names, _ = _annotated_items(folder)
    order = sorted(range(len(names)), key=lambda i: names[i])
    held = set(order[2::5])
    parts = write_subsets(folder, out, {"train": sorted(set(order) - held), "test": sorted(held)})
    return parts["train"], parts["test"]
