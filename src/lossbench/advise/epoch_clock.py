"""The pilot's Lightning callback: times its epochs and stops it (a module of its own, so that Lightning
loads only when the pilot runs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L

from lossbench.advise.pilot import epoch_estimate


class PilotClock(L.Callback):
    """Times the training epochs (validation included) and stops training after ``epochs`` epochs or at
    the first training batch that ends after ``deadline`` (``time.monotonic()`` seconds) once two have
    been timed: the first batch holds the start-up, so one batch alone gives no rate."""

    def __init__(self, epochs: int, deadline: float, now: Callable[[], float] = time.monotonic) -> None:
        self.epochs, self.deadline, self.now = epochs, deadline, now
        self.fit_start = self.last = 0.0
        self.epoch_ends: list[float] = []
        self.batches = 0  # training batches of the unfinished epoch
        self.first_batch_end = 0.0  # of the unfinished epoch (its first batch holds the loader's start-up)
        self.batches_per_epoch = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_start = self.last = self.now()
        self.batches_per_epoch = float(trainer.num_training_batches)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self.batches += 1
        self.last = self.now()
        if self.batches == 1:
            self.first_batch_end = self.last
        if self.last >= self.deadline and (self.batches >= 2 or self.epoch_ends):
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.batches < self.batches_per_epoch:  # stopped inside the epoch: timed by its batches
            return
        self.last = self.now()
        self.epoch_ends.append(self.last - self.fit_start)
        self.batches = 0
        if len(self.epoch_ends) >= self.epochs or self.last >= self.deadline:
            trainer.should_stop = True

    def estimate(self) -> tuple[float, float]:
        """(seconds of one epoch, epochs done): :func:`epoch_estimate` of what was timed."""
        if self.batches >= 2:  # the unfinished epoch's rate after its first batch
            return epoch_estimate(
                self.epoch_ends, self.last - self.first_batch_end, self.batches - 1, self.batches_per_epoch
            )
        partial_s = self.last - self.fit_start - (self.epoch_ends[-1] if self.epoch_ends else 0.0)
        return epoch_estimate(self.epoch_ends, partial_s, self.batches, self.batches_per_epoch)
