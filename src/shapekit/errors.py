"""User-facing errors: one line that names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path


class ShapekitError(Exception):
    """An error caused by the user's input or settings; the CLI prints it as one line."""


class InputError(ShapekitError):
    """Something is wrong with an input file; the message names the file (and line when known)."""

    def __init__(self, path: str | Path | None, message: str, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        self.reason = " ".join(str(message).split())  # always one line
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + self.reason)
