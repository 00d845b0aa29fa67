"""Plain CSV landmarks: one row per image, columns image, <name>_x, <name>_y[, <name>_conf]."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import write_text


def format_csv(images: list[str], points: np.ndarray, names: list[str], confidence: np.ndarray | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["image"]
    for name in names:
        header += [f"{name}_x", f"{name}_y"] + ([f"{name}_conf"] if confidence is not None else [])
    writer.writerow(header)
    for row_index, image in enumerate(images):
        row: list[str] = [image]
        for k in range(len(names)):
            x, y = points[row_index, k]
            row += ["" if math.isnan(x) else f"{x:.3f}", "" if math.isnan(y) else f"{y:.3f}"]
            if confidence is not None:
                row.append(f"{confidence[row_index, k]:.4f}")
        writer.writerow(row)
    return buffer.getvalue()


def write_csv(path: str | Path, images: list[str], points: np.ndarray, names: list[str],
              confidence: np.ndarray | None = None) -> Path:
    return write_text(path, format_csv(images, points, names, confidence))


def read_csv(path: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Returns image names, (M, N, 2) points (NaN where empty) and landmark names."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "CSV file not found")
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    if not rows or not rows[0] or rows[0][0].strip().lower() != "image":
        raise InputError(path, "first column header must be 'image'", 1)
    header = rows[0]
    names = [col[:-2] for col in header[1:] if col.endswith("_x")]
    columns = {col: k for k, col in enumerate(header)}
    for name in names:
        if f"{name}_y" not in columns:
            raise InputError(path, f"column {name}_x has no matching {name}_y", 1)
    images, points = [], []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(path, f"{len(row)} columns, header has {len(header)}", line_no)
        images.append(row[0])
        coords = []
        for name in names:
            pair = []
            for axis in "xy":
                cell = row[columns[f"{name}_{axis}"]].strip()
                try:
                    pair.append(float(cell) if cell else math.nan)
                except ValueError:
                    raise InputError(path, f"{name}_{axis} is not a number: {cell!r}", line_no) from None
            coords.append(pair)
        points.append(coords)
    return images, np.asarray(points, dtype=np.float64).reshape(len(images), len(names), 2), names
