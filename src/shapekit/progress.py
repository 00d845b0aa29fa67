"""Progress bars for long loops (rich in a terminal, silent in logs)."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("SHAPEKIT_NO_PROGRESS")


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    if not interactive():
        return items
    from rich.progress import track as rich_track

    return rich_track(items, description=description, total=total, transient=True)
