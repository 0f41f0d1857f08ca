"""The callback that stops a job of a sweep whose jobs run in other processes once the sweep is stopping
(:mod:`lossbench.sweep_stop`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from lossbench.sweep_stop import stop_signal


class StopWithTheSweep(Callback):
    """After a training batch, once the sweep in ``sweep_dir`` is marked stopping: this job's process sends
    itself SIGTERM, so the job stops as a run stopped by SIGTERM does (after the batch, its last
    checkpoint kept, its record ``interrupted``). One look at the mark per batch (a file's existence)."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = sweep_dir
        self.sent = False

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.sent and stop_signal(self.sweep_dir) is not None:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def sweep_stop_callbacks() -> list[Callback]:
    """The job's :class:`StopWithTheSweep` in a sweep whose jobs run in other processes; else none."""
    from hydra.core.hydra_config import HydraConfig

    from lossbench.config import in_multirun
    from lossbench.sweep_stop import runs_jobs_elsewhere, sweep_dir_of

    if not (HydraConfig.initialized() and in_multirun()):
        return []
    hydra = HydraConfig.get()
    return [StopWithTheSweep(sweep_dir_of(hydra))] if runs_jobs_elsewhere(hydra.launcher) else []
