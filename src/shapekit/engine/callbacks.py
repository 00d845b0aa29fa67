"""Per-epoch CSV log, console lines and plots beside the checkpoints."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import lightning as L
import torch

from ..io.atomic import write_text

METRICS_FILE = "metrics.csv"


class EpochLog(L.Callback):
    """One row per epoch in RUN_DIR/metrics.csv (kept across resumes) and one console line."""

    def __init__(self, out_dir: Path, console=None):
        self.path = Path(out_dir) / METRICS_FILE
        self.console = console
        self.rows: list[dict[str, str]] | None = None
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        if self.rows is None:
            self.rows = []
            if self.path.exists():
                with open(self.path, newline="") as handle:
                    # After a resume, keep the epochs the restored checkpoint already covers.
                    self.rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) < trainer.current_epoch]
        self._start = time.time()

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        row = {"epoch": str(trainer.current_epoch), "seconds": f"{time.time() - self._start:.1f}",
               "lr": f"{trainer.optimizers[0].param_groups[0]['lr']:.3g}"}
        row.update({k.replace("/", "_"): f"{v:.6g}" for k, v in sorted(metrics.items())})
        self.rows.append(row)
        if trainer.is_global_zero:
            self._write()
            if self.console is not None:
                shown = "  ".join(f"{k} {v}" for k, v in row.items() if k not in ("epoch",))
                self.console.print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}")

    def _write(self):
        fields: list[str] = []
        for row in self.rows:
            fields += [k for k in row if k not in fields]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())


class PlotCallback(L.Callback):
    """Loss curves (at most every ``min_seconds``, so short epochs are not slowed down by drawing) and the
    task's own figures every ``every`` epochs; both again at the end."""

    def __init__(self, out_dir: Path, every: int = 5, min_seconds: float = 20.0):
        self.out_dir = Path(out_dir)
        self.every = every
        self.min_seconds = min_seconds
        self._last_curves = 0.0

    def _curves(self):
        from ..plots import plot_training_curves

        plot_training_curves(self.out_dir / METRICS_FILE, self.out_dir / "loss_curves.png")
        self._last_curves = time.time()

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        if time.time() - self._last_curves >= self.min_seconds:
            self._curves()
        if (trainer.current_epoch + 1) % self.every == 0:
            self._task_plots(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            self._curves()
            self._task_plots(trainer, pl_module)

    def _task_plots(self, trainer, pl_module):
        model = pl_module.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            pl_module.task.epoch_plots(model, self.out_dir, pl_module.device)
        model.train(was_training)


class FitToMinutes(L.Callback):
    """Sizes a run to a wall-time budget from its own epochs: before each epoch in the first half of the budget,
    the epoch count (and with it the learning-rate schedule's length) is set to what the remaining time holds at
    the mean epoch time so far. Lightning's ``max_time`` only cuts a run short, mid-schedule; and a throughput
    probe before training misses what an epoch costs besides its steps (data loading, validation, checkpoints,
    plots) and varies with the machine's load. ``max_epochs``, when given, stays an upper bound. The time spent
    and the length chosen are kept in the checkpoint, so a resumed run keeps its budget."""

    def __init__(self, minutes: float, max_epochs: int | None = None, console=None):
        self.budget = minutes * 60.0
        self.max_epochs = max_epochs
        self.console = console
        self.spent_before = 0.0  # seconds spent by the sessions before a resume
        self.epochs: int | None = None
        self.epoch_seconds: list[float] = []
        self._session_start = time.time()
        self._epoch_start: float | None = None

    def state_dict(self):
        return {"spent": self._spent(), "epochs": self.epochs, "epoch_seconds": list(self.epoch_seconds)}

    def load_state_dict(self, state_dict):
        self.spent_before = float(state_dict["spent"])
        self.epochs = state_dict["epochs"]
        self.epoch_seconds = list(state_dict["epoch_seconds"])

    def _spent(self) -> float:
        return self.spent_before + time.time() - self._session_start

    def on_train_start(self, trainer, pl_module):
        self._session_start = time.time()
        if self.epochs is not None:
            self._apply(trainer, pl_module, self.epochs)

    def on_train_epoch_start(self, trainer, pl_module):
        now = time.time()
        if self._epoch_start is not None:
            self.epoch_seconds.append(now - self._epoch_start)
        self._epoch_start = now
        if not self.epoch_seconds or self._spent() > self.budget / 2:
            return  # nothing timed yet, or late in the run: the annealing phase is left alone
        # The first epoch carries one-off costs (first kernels, caches) that would shorten the schedule too much
        # and then stretch it again, so it only counts alone when it is a large part of the budget.
        if len(self.epoch_seconds) == 1 and self.epoch_seconds[0] < self.budget / 10:
            return
        timed = self.epoch_seconds[1:] or self.epoch_seconds
        per_epoch = sum(timed) / len(timed)
        epochs = trainer.current_epoch + max(1, int((self.budget - self._spent()) // per_epoch))
        if self.max_epochs:
            epochs = min(epochs, self.max_epochs)
        epochs = int(trainer.strategy.broadcast(epochs, src=0))  # every process must stop after the same epoch
        if epochs != self.epochs and self.console is not None and trainer.is_global_zero:
            self.console.print(f"time budget {self.budget / 60:g} min: {per_epoch:.1f} s per epoch -> {epochs} epochs")
        self._apply(trainer, pl_module, epochs)

    def _apply(self, trainer, pl_module, epochs: int) -> None:
        self.epochs = epochs
        trainer.fit_loop.max_epochs = epochs
        pl_module.set_run_length(epochs)
