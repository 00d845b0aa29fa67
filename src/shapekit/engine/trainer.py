"""Training entry point shared by every task: Lightning trainer, checkpoints (best + last), resume,
per-epoch CSV, plots, device/precision selection and multi-device strategies (DDP)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint, RichProgressBar
from torch.utils.data import DataLoader

from ..config import RunConfig
from ..errors import ShapekitError
from ..io.atomic import write_text
from .callbacks import EpochLog, FitToMinutes, PlotCallback
from .checkpoint import META_KEY, AtomicCheckpointIO, model_state, read_checkpoint
from .module import TaskModule
from .runtime import resolve_accelerator, resolve_channels_last, resolve_precision

CONFIG_FILE = "config.yaml"


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*bf16.*is supported for historical reasons.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")


def resumable_config(out: Path, epochs: int | None = None) -> RunConfig:
    """The configuration a run was started with, read back from its last checkpoint."""
    last = out / "last.ckpt"
    if not last.is_file():
        raise ShapekitError(f"{out}: nothing to resume (no last.ckpt)")
    config = RunConfig(**read_checkpoint(last)[META_KEY]["config"])
    return config.model_copy(update={"out": out, **({"epochs": epochs} if epochs else {})})


def _loader(dataset, config: RunConfig, shuffle: bool) -> DataLoader:
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=shuffle, num_workers=config.num_workers,
                      drop_last=shuffle and len(dataset) > config.batch_size,
                      persistent_workers=config.num_workers > 0, pin_memory=torch.cuda.is_available())


def _init_from(task, model: torch.nn.Module, path: Path, console) -> None:
    ckpt = read_checkpoint(path)
    state = task.adapt_state_dict(model_state(ckpt), ckpt[META_KEY]["meta"], model)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(usable))
    model.load_state_dict(usable, strict=False)
    if console is not None:
        console.print(f"initialised {len(usable)}/{len(own)} tensors from {path}"
                      + (f" ({len(skipped)} start fresh, e.g. {skipped[0]})" if skipped else ""))


def _length(config: RunConfig, epochs: int) -> str:
    if config.minutes:
        return f"~{config.minutes:g} min (epochs sized from the first ones{f', at most {epochs}' if config.epochs else ''})"
    return f"{epochs} epochs"


def train(config: RunConfig, resume: bool = False, console=None) -> Path:
    """Train ``config.task`` on ``config.data`` into ``config.out``; returns the run folder."""
    from ..tasks import get_task

    _quiet_lightning()
    if config.out is None or config.data is None:
        raise ShapekitError("training needs --data and --out")
    out = Path(config.out)
    last = out / "last.ckpt"
    if resume and not last.is_file():
        raise ShapekitError(f"{out}: --resume given but there is no last.ckpt to resume from")
    if not resume and last.is_file():
        raise ShapekitError(f"{out}: already holds a training run; add --resume to continue it or choose a new --out")
    out.mkdir(parents=True, exist_ok=True)

    L.seed_everything(config.seed, workers=True, verbose=False)
    task = get_task(config.task)(config)
    train_set, val_set = task.setup()
    model = task.build_model(pretrained=config.init_from is None and not resume)
    if config.init_from is not None and not resume:
        _init_from(task, model, Path(config.init_from), console)

    accelerator = resolve_accelerator(config.device)
    precision = resolve_precision(config.precision, accelerator)
    channels_last = resolve_channels_last(config.channels_last, accelerator, precision)
    epochs = config.epochs or task.default_epochs(len(train_set))
    module = TaskModule(task, model, channels_last=channels_last)

    monitor = task.monitor if val_set is not None else "train/loss"
    mode = task.monitor_mode if val_set is not None else "min"
    callbacks: list = [
        ModelCheckpoint(dirpath=out, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                        auto_insert_metric_name=False, enable_version_counter=False),
        # A second, unmonitored checkpoint rewritten every epoch: Lightning's save_last only follows
        # improvements of the monitored metric, which would make --resume repeat epochs.
        ModelCheckpoint(dirpath=out, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                        auto_insert_metric_name=False, enable_version_counter=False),
        EpochLog(out, console),
        PlotCallback(out, config.plot_every),
    ]
    if config.minutes:
        callbacks.append(FitToMinutes(config.minutes, config.epochs, console))
    if config.ema:
        # Average from the end of warm-up on: early weights are far from the optimum.
        start = max(1, int(config.warmup_epochs * max(1, len(train_set) // config.batch_size)))
        callbacks.append(EMAWeightAveraging(decay=config.ema, update_starting_at_step=start))
    interactive = sys.stdout.isatty() and not os.environ.get("SHAPEKIT_NO_PROGRESS")
    if interactive:
        callbacks.append(RichProgressBar(leave=False))

    if console is not None:
        console.print(f"[bold]{task.name}[/]: {len(train_set)} training / {len(val_set) if val_set else 0} validation "
                      f"images, {_length(config, epochs)}, {accelerator} x{config.devices}, {precision}"
                      f"{', channels_last' if channels_last else ''} -> {out}")
        for note in task.data_notes:
            console.print(f"[yellow]note[/]: {note}")
    if not resume:
        write_text(out / CONFIG_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))

    trainer = L.Trainer(
        accelerator=accelerator, devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy,
        precision=precision, max_epochs=epochs,
        max_time=timedelta(minutes=config.max_minutes) if config.max_minutes else None,
        callbacks=callbacks, logger=False, default_root_dir=out, plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0, enable_model_summary=False, enable_progress_bar=interactive,
        log_every_n_steps=10, limit_val_batches=1.0 if val_set is not None else 0,
    )
    trainer.fit(module, _loader(train_set, config, shuffle=True),
                _loader(val_set, config, shuffle=False) if val_set is not None else None,
                ckpt_path=str(last) if resume else None)
    return out
