"""The Task interface: what a user picks with ``--task``.

A task wires data, model, loss, decoding, metrics, plots and output formats together; the engine
(training loop, checkpoints, resume, CSV log, loss curves) and the CLI are shared by all tasks.
Adding a task means adding a module to ``shapekit.tasks`` that subclasses :class:`Task` and
decorates it with :func:`register_task`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn
from torch.utils.data import Dataset

from ..config import RunConfig, validate
from ..errors import ShapekitError

if TYPE_CHECKING:
    from ..engine.runtime import Runtime
    from ..tta import TestTimeAugmentation

_TASKS: dict[str, type["Task"]] = {}
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "models"  # models shipped inside the package


def read_inputs(inputs, console=None):
    """Images from files and folders; unreadable ones are reported in one line each and skipped.

    Returns (images, paths, failures)."""
    from ..errors import InputError
    from ..io.images import list_images, read_image

    paths = list_images(inputs)
    if not paths:
        raise ShapekitError("no images to predict on (looked for .jpg .png .tif .bmp .webp)")
    images, kept, failed = [], [], []
    for path in paths:
        try:
            images.append(read_image(path))
            kept.append(path)
        except InputError as exc:
            failed.append(str(exc))
            if console is not None:
                console.print(f"[red]skipped[/] {exc}")
    return images, kept, failed


def json_number(value) -> float | None:
    """A float for a JSON result, None for missing (NaN, inf or None): JSON has no NaN."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def json_values(values) -> list:
    """Array -> nested lists for a JSON result: a 1-D array element by element, a 2-D array row by row with
    a row holding any missing value (NaN) written as None (a missing point)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return [json_number(v) for v in values]
    return [[float(v) for v in row] if np.isfinite(row).all() else None for row in values]


def register_task(cls: type["Task"]) -> type["Task"]:
    _TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> type["Task"]:
    from . import _load_builtin_tasks

    _load_builtin_tasks()
    if name not in _TASKS:
        raise ShapekitError(f"unknown task {name!r}; available: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def available_tasks() -> list[str]:
    from . import _load_builtin_tasks

    _load_builtin_tasks()
    return sorted(_TASKS)


class Task(ABC):
    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    monitor: ClassVar[str] = "val/loss"  # metric that picks best.ckpt
    monitor_mode: ClassVar[str] = "min"
    output_formats: ClassVar[tuple[str, ...]] = ()
    default_model: ClassVar[Path | None] = None  # a model shipped in the package, used when --model is omitted
    default_lr: ClassVar[float] = 1e-3
    # What the web app draws for this task's results: "landmarks" | "landmarks3d" | "mask" | "mesh".
    web_kind: ClassVar[str] = ""
    # Test-time views the web app offers (see shapekit.tta.TEST_TIME_MODES); "off" only for tasks without any.
    test_time_modes: ClassVar[tuple[str, ...]] = ("off",)
    # Names of the network's outputs in an ONNX export (one per tensor the forward pass returns).
    onnx_outputs: ClassVar[tuple[str, ...]] = ("output",)
    # int8 export calibrates on letterboxed whole images; tasks whose network sees something else opt out.
    int8_export: ClassVar[bool] = True
    # Inference can run from an ONNX export (predict/evaluate take ``forward``): --engine auto may choose it.
    onnx_inference: ClassVar[bool] = True

    def __init__(self, config: RunConfig, meta: dict[str, Any] | None = None):
        self.config = config
        self.options = validate(self.Options, config.options, f"--task {self.name} options")
        self.meta: dict[str, Any] = dict(meta or {})  # everything inference needs, saved in checkpoints
        self.data_notes: list[str] = []  # what setup() noticed about the training data, shown when training starts

    @property
    def lr(self) -> float:
        return self.config.lr or self.default_lr

    @property
    def input_shape(self) -> tuple[int, int]:
        """Network input (width, height) in pixels."""
        shape = self.meta.get("input_shape")
        return (int(shape[0]), int(shape[1])) if shape else (self.config.input_size, self.config.input_size)

    @property
    def turn_to_fit(self) -> bool:
        """Whether images are turned by 90 degrees to match a non-square input (see :meth:`Letterbox.fit`)."""
        return bool(self.meta.get("turn_to_fit", False))

    # --- training -----------------------------------------------------------------------------
    @abstractmethod
    def setup(self) -> tuple[Dataset, Dataset | None]:
        """Load ``config.data``; return (train, validation) datasets and fill ``self.meta``."""

    @abstractmethod
    def build_model(self, pretrained: bool = True) -> nn.Module: ...

    @abstractmethod
    def training_step(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]: ...

    @abstractmethod
    def validation_step(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and per-sample tensors (first dim = batch) that :meth:`validation_metrics` summarises."""

    @abstractmethod
    def validation_metrics(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]: ...

    def default_epochs(self, n_train: int) -> int:
        return 50

    def epoch_plots(self, model: nn.Module, out_dir: Path, device: torch.device) -> None:
        """Figures a person wants to look at during training (called on rank 0)."""

    def first_val_images(self, count: int, device: torch.device) -> tuple[list[int], torch.Tensor] | None:
        """Indices and stacked input images of the first ``count`` validation samples (for epoch plots)."""
        samples = getattr(self, "_val_samples", None)
        if not samples:
            return None
        picks = list(range(min(count, len(samples))))
        return picks, torch.stack([samples[i]["image"] for i in picks]).to(device)

    def adapt_state_dict(self, state: dict[str, torch.Tensor], source_meta: dict[str, Any],
                         model: nn.Module) -> dict[str, torch.Tensor]:
        """Fine-tuning hook: reshape a checkpoint trained on other data for this task's model."""
        return state

    # --- inference ----------------------------------------------------------------------------
    @abstractmethod
    def predict(self, model: nn.Module, inputs: list[Path], out: Path, **kwargs) -> dict[str, Any]: ...

    @abstractmethod
    def evaluate(self, model: nn.Module, data: Path, **kwargs) -> dict[str, Any]: ...

    @abstractmethod
    def print_report(self, report: dict[str, Any], console) -> None: ...

    def test_time_augmentation(self) -> "TestTimeAugmentation":
        """The views ``--tta`` averages over (see :mod:`shapekit.tta`); tasks with map outputs override this."""
        raise ShapekitError(f"--tta: the {self.name!r} task has no test-time augmentation")

    # --- web app / HTTP API -----------------------------------------------------------------------
    def predict_image(self, model: nn.Module | None, image: np.ndarray, runtime: "Runtime",
                      **options) -> dict[str, Any]:
        """One RGB uint8 image (H, W, 3) -> a JSON-serialisable result for the web app and the HTTP API.

        The result's ``kind`` is :attr:`web_kind`; its fields are listed in the web app's contract
        (coordinates in original image pixels, x right, y down, null for missing values). Implementations
        reuse the task's own batched inference path. ``options`` may carry ``forward`` (an onnxruntime
        session used instead of ``model``)."""
        raise ShapekitError(f"the {self.name!r} task has no web view (it does not implement predict_image)")
