"""A user's Lightning callback, added from the command line: records what Lightning's hooks see and writes
it to ``<run dir>/probe.json``.

    python train.py +callbacks.probe._target_=tests.lightning_probe.StepProbe
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L

FILENAME = "probe.json"


class StepProbe(L.Callback):
    def __init__(self) -> None:
        self.train_batch_ends = 0
        self.validations = 0
        self.estimated_stepping_batches: float | None = None
        self.batch_sizes: set[int] = set()
        self.step_lrs: list[float] = []  # the learning rate of each optimizer step
        self.batch_losses: list[tuple[int, float, int]] = []  # (epoch, loss, batch size) of each batch
        self.epoch_train_loss: list[float | None] = []  # callback_metrics["train/loss"] at each epoch's end

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.estimated_stepping_batches = trainer.estimated_stepping_batches

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.train_batch_ends += 1
        self.batch_sizes.add(len(batch[1]))
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.batch_losses.append((trainer.current_epoch, float(loss), len(batch[1])))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seen = trainer.callback_metrics.get("train/loss")
        self.epoch_train_loss.append(None if seen is None else float(seen))

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any
    ) -> None:
        self.step_lrs.append(optimizer.param_groups[0]["lr"])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validations += 1

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = {
            "train_batch_ends": self.train_batch_ends,
            "validations": self.validations,
            "estimated_stepping_batches": self.estimated_stepping_batches,
            "global_step": trainer.global_step,
            "batch_sizes": sorted(self.batch_sizes),
            "num_training_batches": trainer.num_training_batches,
            "step_lrs": self.step_lrs,
            "batch_losses": self.batch_losses,
            "epoch_train_loss": self.epoch_train_loss,
        }
        Path(trainer.default_root_dir, FILENAME).write_text(json.dumps(record))


class StopAtStep(L.Callback):
    """Sets ``trainer.should_stop`` once ``step`` optimizer steps are done, as a user's callback may."""

    def __init__(self, step: int = 20) -> None:
        self.step = step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True
