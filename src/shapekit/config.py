"""Run configuration shared by every task; task-specific settings live in ``options`` and are
validated by the task's own pydantic model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError, ShapekitError


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = "landmarks"
    data: Path | None = None
    out: Path | None = None
    epochs: int | None = Field(None, ge=1, description="None: the task picks enough for its dataset size")
    batch_size: int = Field(8, ge=1)
    lr: float | None = Field(None, gt=0, description="Adam learning rate; None: the task's default")
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    ema: float | None = Field(None, ge=0, lt=1, description="exponential moving average of the weights (decay per "
                                                           "step, e.g. 0.995); checkpoints then hold the average")
    input_size: int = Field(256, ge=32, description="square network input, pixels (multiple of 32)")
    encoder: str = "mobilenet_v2"
    encoder_weights: str = "imagenet"  # "imagenet", "none" or a weights file
    val_fraction: float = Field(0.15, ge=0, lt=1)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    devices: int = Field(1, ge=1)
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    precision: str = "auto"  # auto | 32 | bf16-mixed | 16-mixed
    channels_last: bool | None = None  # None: on when running bf16 on the CPU
    num_workers: int = Field(0, ge=0)
    minutes: float | None = Field(None, gt=0, description="train for about this wall time: the epoch count and the "
                                  "learning-rate schedule are sized from the run's first epochs (epochs: upper bound)")
    max_minutes: float | None = Field(None, gt=0, description="stop training after this wall time")
    plot_every: int = Field(5, ge=1, description="epochs between heatmap/overlay plots")
    init_from: Path | None = None
    landmark_map: str | None = Field(None, description="fine-tuning across landmark sets: 'old:new,...' pairs")
    options: dict[str, Any] = Field(default_factory=dict)


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError(path, f"invalid YAML ({getattr(exc, 'problem', exc)})", None if line is None else line + 1) from None
    if not isinstance(data, dict):
        raise InputError(path, "config must be a mapping of setting: value")
    return data


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as YAML) into a nested dict; dots nest: augment.rotate=30."""
    result: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ShapekitError(f"option {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def validate(model: type[BaseModel], data: dict[str, Any], what: str) -> BaseModel:
    try:
        return model(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ShapekitError(f"{what}: {where}: {first['msg']}") from None
