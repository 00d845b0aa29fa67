"""Tasks: ``landmarks`` (heatmap U-Net) and the others as they land. See :mod:`shapekit.tasks.base`."""

from __future__ import annotations

import importlib
import pkgutil

from .base import Task, available_tasks, get_task, register_task


_loaded = False


def _load_builtin_tasks() -> None:
    """Import every module in this package (once) so each registers its task."""
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    _loaded = True


__all__ = ["Task", "available_tasks", "get_task", "register_task"]
