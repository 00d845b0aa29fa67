"""Checkpoints that carry everything inference needs (task, config, landmark names, preprocessing),
written atomically so an interrupted save never corrupts ``last.ckpt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .. import __version__
from ..config import RunConfig
from ..errors import InputError
from ..io.atomic import atomic_open
from .callbacks import FitToMinutes

META_KEY = "shapekit"


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_open(path, "wb") as handle:
            torch.save(checkpoint, handle)


INT8_KEY = "state_dict_int8"


def slim_checkpoint(source: str | Path, target: str | Path, int8_min_numel: int | None = None) -> int:
    """Write only what inference needs (task metadata and fp16 weights) for shipping; returns the size in bytes.

    With ``int8_min_numel``, weight matrices at least that large are stored as int8 with one fp16 scale per
    output row (symmetric quantisation); ``model_state`` expands them again when the checkpoint is read.
    """
    ckpt = read_checkpoint(source)
    state, quantised = {}, {}
    for name, value in ckpt["state_dict"].items():
        if int8_min_numel is not None and value.dim() == 2 and value.numel() >= int8_min_numel:
            scale = value.float().abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
            quantised[name] = {"int8": torch.round(value.float() / scale).to(torch.int8), "scale": scale.half()}
        else:
            state[name] = value.half() if value.is_floating_point() else value
    slim = {META_KEY: ckpt[META_KEY], "epoch": ckpt.get("epoch"), "state_dict": state}
    if quantised:
        slim[INT8_KEY] = quantised
    with atomic_open(target, "wb") as handle:
        torch.save(slim, handle)
    return Path(target).stat().st_size


def checkpoint_meta(task) -> dict[str, Any]:
    return {"task": task.name, "config": task.config.model_dump(mode="json"), "meta": task.meta,
            "version": __version__}


def save_model_checkpoint(task, model, path: str | Path) -> Path:
    """A checkpoint of ``model`` for ``task`` without training state (what ``load_model`` needs), atomically."""
    payload = {META_KEY: checkpoint_meta(task), "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or META_KEY not in ckpt or "state_dict" not in ckpt:
        raise InputError(path, "not a shapekit checkpoint (no task metadata inside)")
    return ckpt


def unfinished(ckpt: dict[str, Any]) -> bool:
    """Whether the run behind a training checkpoint stopped before the epochs it planned: those its time budget
    chose (``--minutes``; kept in the checkpoint by FitToMinutes), else its configured count."""
    config = ckpt[META_KEY]["config"]
    budget = ckpt.get("callbacks", {}).get(FitToMinutes.__qualname__)  # Lightning's default callback state key
    planned = budget.get("epochs") if budget else config.get("epochs")
    if planned is None:
        return bool(config.get("minutes"))  # a budget run that stopped before it had sized itself
    return ckpt.get("epoch", 0) + 1 < planned


def model_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's weights, without the LightningModule's ``model.`` prefix."""
    prefix = "model."
    state = dict(ckpt["state_dict"])
    for name, packed in ckpt.get(INT8_KEY, {}).items():
        state[name] = packed["int8"].float() * packed["scale"].float()
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_model(path: str | Path, task_name: str | None = None):
    """(task, model) from a checkpoint, ready for inference on the CPU."""
    from ..tasks import get_task

    ckpt = read_checkpoint(path)
    meta = ckpt[META_KEY]
    if task_name is not None and task_name != meta["task"]:
        raise InputError(path, f"is a {meta['task']!r} checkpoint, not {task_name!r}")
    task = get_task(meta["task"])(RunConfig(**meta["config"]), meta["meta"])
    model = task.build_model(pretrained=False)
    model.load_state_dict(model_state(ckpt))
    return task, model.eval()
