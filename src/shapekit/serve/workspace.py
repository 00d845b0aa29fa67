"""The workspace root the web app serves: every path a client names is resolved here, and nothing outside
the root is ever read or written (no ``..``, no absolute paths, no symlinks that lead out)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import ShapekitError

# Folders never worth scanning for datasets or models (and often huge).
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", "lightning_logs"}


class PathRefused(ShapekitError):
    """A client asked for a path the workspace does not serve; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Workspace:
    def __init__(self, root: str | Path):
        root = Path(root).expanduser()
        if not root.is_dir():
            raise ShapekitError(f"{root}: workspace root is not a folder")
        self.root = root.resolve()

    def resolve(self, relative: str, must_exist: bool = True, kind: str | None = None) -> Path:
        """The real path of ``relative`` (a '/'-separated path under the root, as the client sent it).

        Refused with 400: absolute paths, ``..`` parts, backslashes, NUL bytes; with 403: hidden parts
        (``.git``, ``.env``) and paths whose real location (after following symlinks) is outside the root; with 404: missing paths (``must_exist``).
        ``kind`` = "file" or "dir" also checks what the path is."""
        relative = relative or ""
        if "\x00" in relative or "\\" in relative:
            raise PathRefused("path contains a NUL byte or a backslash")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or relative.startswith("~"):
            raise PathRefused("absolute paths are not served: give a path relative to the workspace root")
        if any(part == ".." for part in pure.parts):
            raise PathRefused("'..' is not allowed in paths")
        if any(part.startswith(".") for part in pure.parts):  # .git, .env, temporary files of atomic writes
            raise PathRefused(f"{relative}: hidden files and folders are not served", 403)
        candidate = self.root.joinpath(*pure.parts)
        real = Path(os.path.realpath(candidate))
        if not real.is_relative_to(self.root):
            raise PathRefused(f"{relative}: leads outside the workspace (a symlink out of the root?)", 403)
        if must_exist and not real.exists():
            raise PathRefused(f"{relative}: not found in the workspace", 404)
        if kind == "file" and must_exist and not real.is_file():
            raise PathRefused(f"{relative}: is not a file", 404)
        if kind == "dir" and must_exist and not real.is_dir():
            raise PathRefused(f"{relative}: is not a folder", 404)
        return real

    def inside(self, path: Path) -> bool:
        """Whether ``path``'s real location is under the root."""
        return Path(os.path.realpath(path)).is_relative_to(self.root)

    def relative(self, path: Path) -> str:
        """``path`` as the client names it: relative to the root, '/'-separated."""
        path = Path(os.path.realpath(path))
        return "" if path == self.root else path.relative_to(self.root).as_posix()

    def scrub(self, message: str) -> str:
        """An error message without the server's absolute root path."""
        return message.replace(str(self.root) + os.sep, "").replace(str(self.root), ".")

    def walk(self, max_depth: int = 4, max_dirs: int = 2000):
        """Folders under the root (breadth first, real paths inside the root only, hidden and tool folders
        skipped), bounded in depth and count so a huge workspace still answers quickly."""
        queue, seen = [(self.root, 0)], 0
        while queue and seen < max_dirs:
            folder, depth = queue.pop(0)
            seen += 1
            yield folder
            if depth >= max_depth:
                continue
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            for child in children:
                if child.name in SKIPPED_DIRS or child.name.startswith(".") or child.is_symlink():
                    continue
                queue.append((child, depth + 1))
