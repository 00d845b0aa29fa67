"""TPS landmark files (tpsDig / tpsUtil format, the lingua franca of geometric morphometrics).

A file is a sequence of specimens::

    LM=3            (LM3= for 3D landmarks)
    12.5 40.0
    ...
    CURVES=1        (optional; each curve is POINTS=k followed by k lines)
    POINTS=2
    ...
    IMAGE=wing01.jpg
    ID=1
    SCALE=0.0123    (physical units per pixel)
    COMMENT=...

tpsDig measures y from the *bottom* of the image. :func:`to_top_origin` / :func:`from_top_origin`
convert to and from the top-left origin the rest of shapekit uses. Coordinates here are kept exactly
as written in the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import write_text

_KEY_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_MISSING = {"na", "nan", "?"}


@dataclass
class TpsSpecimen:
    points: np.ndarray  # (N, 2) or (N, 3), as written in the file; NaN = missing landmark
    image: str | None = None
    id: str | None = None
    scale: float | None = None
    comment: str | None = None
    curves: list[np.ndarray] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)  # other KEY=value lines, kept for round trips
    line: int | None = None  # line of its LM= header, for error messages


def _parse_numbers(text: str, dims: int, path: Path, line_no: int) -> list[float]:
    parts = text.split()
    if len(parts) != dims:
        raise InputError(path, f"expected {dims} coordinates on a point line, found {len(parts)}: {text.strip()!r}", line_no)
    values = []
    for part in parts:
        if part.lower() in _MISSING:
            values.append(math.nan)
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise InputError(path, f"not a number: {part!r}", line_no) from None
    return values


def read_tps(path: str | Path) -> list[TpsSpecimen]:
    """Parse a TPS file; raises :class:`InputError` naming file and line on malformed input."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "TPS file not found")
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(path, f"cannot read TPS file ({exc})") from None

    specimens: list[TpsSpecimen] = []
    current: TpsSpecimen | None = None
    i = 0

    def read_points(count: int, dims: int, header_line: int, what: str) -> np.ndarray:
        nonlocal i
        rows = []
        while len(rows) < count:
            if i >= len(lines):
                raise InputError(path, f"{what} announces {count} points but the file ends after {len(rows)}", header_line)
            text = lines[i]
            i += 1
            if not text.strip():
                continue
            if _KEY_LINE.match(text):
                raise InputError(
                    path, f"{what} announces {count} points but only {len(rows)} point lines follow", header_line
                )
            rows.append(_parse_numbers(text, dims, path, i))
        return np.asarray(rows, dtype=np.float64).reshape(count, dims)

    while i < len(lines):
        text = lines[i]
        i += 1
        if not text.strip():
            continue
        match = _KEY_LINE.match(text)
        if not match:
            raise InputError(path, f"unexpected line (expected KEY=value or a point after LM=): {text.strip()!r}", i)
        key, value = match.group(1).upper(), match.group(2)
        header_line = i
        if key in ("LM", "LM3"):
            count = _parse_count(value, key, path, header_line)
            dims = 3 if key == "LM3" else 2
            current = TpsSpecimen(points=read_points(count, dims, header_line, f"{key}={count}"), line=header_line)
            specimens.append(current)
            continue
        if current is None:
            raise InputError(path, f"{key}= before the first LM= line", header_line)
        if key == "CURVES":
            for _ in range(_parse_count(value, key, path, header_line)):
                while i < len(lines) and not lines[i].strip():
                    i += 1
                sub = _KEY_LINE.match(lines[i]) if i < len(lines) else None
                if not sub or sub.group(1).upper() != "POINTS":
                    raise InputError(path, "CURVES= must be followed by POINTS= blocks", i + 1)
                i += 1
                n = _parse_count(sub.group(2), "POINTS", path, i)
                current.curves.append(read_points(n, current.points.shape[1], i, f"POINTS={n}"))
        elif key == "IMAGE":
            current.image = value
        elif key == "ID":
            current.id = value
        elif key == "SCALE":
            try:
                current.scale = float(value)
            except ValueError:
                raise InputError(path, f"SCALE= is not a number: {value!r}", header_line) from None
        elif key == "COMMENT":
            current.comment = value
        else:
            current.extra[key] = value
    if not specimens:
        raise InputError(path, "no specimens (no LM= line) in TPS file")
    return specimens


def _parse_count(value: str, key: str, path: Path, line_no: int) -> int:
    try:
        count = int(value)
    except ValueError:
        raise InputError(path, f"{key}= needs a whole number, got {value!r}", line_no) from None
    if count < 0:
        raise InputError(path, f"{key}= cannot be negative", line_no)
    return count


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NA"
    text = f"{value:.5f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def format_tps(specimens: list[TpsSpecimen]) -> str:
    out: list[str] = []
    for spec in specimens:
        points = np.asarray(spec.points, dtype=np.float64)
        out.append(f"{'LM3' if points.shape[1] == 3 else 'LM'}={len(points)}")
        out.extend(" ".join(_fmt(v) for v in row) for row in points)
        if spec.curves:
            out.append(f"CURVES={len(spec.curves)}")
            for curve in spec.curves:
                out.append(f"POINTS={len(curve)}")
                out.extend(" ".join(_fmt(v) for v in row) for row in np.asarray(curve))
        if spec.image is not None:
            out.append(f"IMAGE={spec.image}")
        if spec.id is not None:
            out.append(f"ID={spec.id}")
        if spec.scale is not None:
            out.append(f"SCALE={spec.scale:.10g}")
        if spec.comment is not None:
            out.append(f"COMMENT={spec.comment}")
        out.extend(f"{key}={value}" for key, value in spec.extra.items())
    return "\n".join(out) + "\n"


def write_tps(path: str | Path, specimens: list[TpsSpecimen]) -> Path:
    return write_text(path, format_tps(specimens))


def to_top_origin(points: np.ndarray, image_height: float) -> np.ndarray:
    """tpsDig (y up from the bottom edge) to image coordinates (y down from the top)."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, 1] = image_height - out[:, 1]
    return out


from_top_origin = to_top_origin  # the flip is its own inverse
