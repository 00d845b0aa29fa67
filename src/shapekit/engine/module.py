"""The one LightningModule: it delegates everything task-specific to a :class:`~shapekit.tasks.Task`."""

from __future__ import annotations

import math

import lightning as L
import torch

from .checkpoint import META_KEY, checkpoint_meta


class TaskModule(L.LightningModule):
    def __init__(self, task, model: torch.nn.Module, channels_last: bool = False):
        super().__init__()
        self.task = task
        self.model = model
        self.channels_last = channels_last
        self._val_outputs: list[dict[str, torch.Tensor]] = []
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.channels_last and isinstance(batch, dict):
            batch = {k: v.contiguous(memory_format=torch.channels_last)
                     if torch.is_tensor(v) and v.dim() == 4 and v.is_floating_point() else v
                     for k, v in batch.items()}
        return batch

    def on_train_epoch_start(self):
        # Tasks with a stage-wise schedule (landmarks3d) pick their losses from the current epoch.
        hook = getattr(self.task, "set_epoch", None)
        if hook is not None:
            hook(self.current_epoch, self.trainer.max_epochs)

    def training_step(self, batch, batch_idx):
        loss, logs = self.task.training_step(self.model, batch)
        size = _batch_size(batch)
        self.log("train/loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=size,
                 sync_dist=True)
        for key, value in logs.items():
            self.log(f"train/{key}", value, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, outputs = self.task.validation_step(self.model, batch)
        self.log("val/loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=_batch_size(batch), sync_dist=True)
        self._val_outputs.append({k: v.detach() for k, v in outputs.items()})

    def on_validation_epoch_end(self):
        if not self._val_outputs:
            return
        merged = {k: torch.cat([o[k] for o in self._val_outputs]) for k in self._val_outputs[0]}
        self._val_outputs.clear()
        if self.trainer.world_size > 1:
            merged = {k: self.all_gather(v).flatten(0, 1) for k, v in merged.items()}
        for key, value in self.task.validation_metrics({k: v.cpu() for k, v in merged.items()}).items():
            self.log(key, float(value), prog_bar=key == self.task.monitor)

    def configure_optimizers(self):
        config = self.task.config
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.task.lr, weight_decay=config.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        self._steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        self._total_steps = total
        warmup = min(total // 2, int(config.warmup_epochs * self._steps_per_epoch))

        def factor(step: int) -> float:
            # Linear warm-up, then cosine decay to 1% of the base rate over the run's current length
            # (read at each step: a time-budgeted run sets its length after timing its first epochs).
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = min(1.0, (step - warmup) / max(1, self._total_steps - warmup))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def set_run_length(self, epochs: int) -> None:
        """Stretch or shrink the learning-rate schedule to end after ``epochs`` epochs."""
        self._total_steps = max(1, epochs * self._steps_per_epoch)

    def on_save_checkpoint(self, checkpoint):
        checkpoint[META_KEY] = checkpoint_meta(self.task)


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        for value in batch.values():
            if torch.is_tensor(value):
                return int(value.shape[0])
    return 1
