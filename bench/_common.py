"""Helpers shared by the benchmark scripts: machine description, tables, JSON results."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

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
