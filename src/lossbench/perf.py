"""Timing helpers for ``scripts/bench.py``: a step timer callback and a phase stopwatch.

``python train.py +callbacks.step_timer._target_=lossbench.perf.StepTimer`` writes ``step_times.json``
into the run dir: per training epoch, the wall time of the training loop (first batch fetched to the
last optimizer step, validation and checkpointing excluded) and its number of optimizer steps. On CUDA the
timer synchronises the device at the two ends of each epoch only, so steps run as they do without it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch

FILENAME = "step_times.json"


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(L.Callback):
    """Records each training epoch's loop time and step count; writes them to ``<dirpath>/step_times.json``.

    Args:
        dirpath: where to write; ``None``: the trainer's ``default_root_dir`` (the run dir).
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath
        self.epochs: list[dict[str, float]] = []
        self._start: float | None = None
        self._first_step = 0
        self._fit_start = 0.0
        self.fit_s: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _sync(pl_module.device)
        self._start, self._first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.is_last_batch and self._start is not None:
            _sync(pl_module.device)
            steps = trainer.global_step - self._first_step  # optimizer steps
            self.epochs.append({"train_s": time.perf_counter() - self._start, "steps": steps})
            self._start = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _sync(pl_module.device)
        self.fit_s = time.perf_counter() - self._fit_start
        if trainer.is_global_zero:
            path = Path(self.dirpath or trainer.default_root_dir) / FILENAME
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"epochs": self.epochs, "fit_s": self.fit_s}, indent=2))


class Stopwatch:
    """Named wall-clock phases: ``with watch("trainer"): ...``; :attr:`times` maps names to seconds."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - start, 4)
