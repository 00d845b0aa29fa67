"""Models for the web app: loaded once, kept in a small cache, each run by one request at a time.

A model is named by the client as a path under the workspace root (a ``.ckpt`` checkpoint or an ``.onnx``
export) or as ``shipped:TASK`` for the model a task ships in the package.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.runtime import Runtime
from ..errors import ShapekitError
from .workspace import PathRefused, Workspace

SHIPPED = "shipped:"
MODEL_SUFFIXES = (".ckpt", ".onnx")


@dataclass
class LoadedModel:
    name: str
    task: Any  # a shapekit Task
    model: Any  # torch module, or None with an onnxruntime forward
    forward: Any = None
    stamp: float = 0.0  # file modification time when loaded (a retrained checkpoint is reloaded)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def predict(self, image, runtime: Runtime, test_time: str = "off", **options) -> dict[str, Any]:
        """The task's web result for one image, with the test-time views ``test_time`` (one of
        shapekit.tta.TEST_TIME_MODES); one inference at a time per model (the caller runs this in a worker
        thread, never on the event loop)."""
        from ..tta import test_time_views

        views = test_time_views(self.task, test_time)
        with self.lock:
            start = time.perf_counter()
            result = self.task.predict_image(self.model, image, runtime, forward=self.forward, tta=views, **options)
            result["milliseconds"] = round((time.perf_counter() - start) * 1000, 2)
        result.setdefault("task", self.task.name)
        result["model"] = self.name
        result["test_time"] = test_time
        return result


def shipped_models() -> dict[str, Path]:
    """``shipped:TASK`` -> model file, for tasks whose shipped model is installed."""
    from ..tasks import available_tasks, get_task

    found = {}
    for name in available_tasks():
        path = getattr(get_task(name), "default_model", None)
        if path is not None and Path(path).is_file():
            found[SHIPPED + name] = Path(path)
    return found


class ModelCache:
    def __init__(self, workspace: Workspace, runtime: Runtime, capacity: int = 4):
        self.workspace, self.runtime, self.capacity = workspace, runtime, capacity
        self._entries: OrderedDict[str, LoadedModel] = OrderedDict()
        self._pinned: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # guards the two dicts
        self._loading: dict[str, threading.Lock] = {}

    def register(self, name: str, task, model, forward=None) -> None:
        """Serve an already loaded model under ``name`` (embedding the app, tests)."""
        self._pinned[name] = LoadedModel(name, task, model, forward)

    def locate(self, name: str) -> Path:
        if name.startswith(SHIPPED):
            shipped = shipped_models()
            if name not in shipped:
                raise PathRefused(f"{name}: no such shipped model (have: {', '.join(sorted(shipped)) or 'none'})", 404)
            return shipped[name]
        path = self.workspace.resolve(name, kind="file")
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise PathRefused(f"{name}: not a model file (expected .ckpt or .onnx)")
        return path

    def get(self, name: str) -> LoadedModel:
        """The model called ``name``, loaded on first use (blocking: call it from a worker thread)."""
        if not name:
            raise PathRefused("choose a model")
        if name in self._pinned:
            return self._pinned[name]
        path = self.locate(name)
        stamp = path.stat().st_mtime
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.stamp == stamp:
                self._entries.move_to_end(name)
                return entry
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # one load per model; requests for other models go on meanwhile
            with self._lock:
                entry = self._entries.get(name)
            if entry is None or entry.stamp != stamp:
                entry = self._load(name, path, stamp)
            with self._lock:
                self._entries[name] = entry
                self._entries.move_to_end(name)
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
            return entry

    def _load(self, name: str, path: Path, stamp: float) -> LoadedModel:
        from ..engine.onnx import load_predictor

        task, model, forward = load_predictor(path, "auto", runtime=self.runtime)
        if not task.web_kind:
            raise ShapekitError(f"{name}: the {task.name!r} task has no web view")
        if model is not None:
            model = self.runtime.prepare_model(model)
        return LoadedModel(name, task, model, forward, stamp)

    def registered(self) -> list[dict[str, Any]]:
        return [model_entry(name, entry.task.name, False) for name, entry in self._pinned.items()]

    def loaded(self) -> list[str]:
        return list(self._pinned) + list(self._entries)


def model_entry(name: str, task: str | None, shipped: bool) -> dict[str, Any]:
    """One row of /api/models, with the test-time views its task offers. A model whose task is not known before
    loading (no config.yaml beside it) is offered every view; the server refuses those it lacks in one line."""
    from ..tasks import available_tasks, get_task
    from ..tta import TEST_TIME_MODES

    modes = get_task(task).test_time_modes if task in available_tasks() else TEST_TIME_MODES
    return {"name": name, "task": task, "shipped": shipped, "test_time": list(modes)}


def list_models(workspace: Workspace, limit: int = 200) -> list[dict[str, Any]]:
    """Shipped models, then model files under the root (with the task named by a run's config.yaml)."""
    import yaml

    models = [model_entry(name, name[len(SHIPPED):], True) for name in sorted(shipped_models())]
    for folder in workspace.walk():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in MODEL_SUFFIXES or not path.is_file() or not workspace.inside(path):
                continue
            task = None
            config = path.parent / "config.yaml"
            if config.is_file() and workspace.inside(config):
                try:
                    task = (yaml.safe_load(config.read_text()) or {}).get("task")
                except (yaml.YAMLError, OSError, AttributeError):
                    task = None
            models.append(model_entry(workspace.relative(path), task, False))
            if len(models) >= limit:
                return models
    return models
