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
