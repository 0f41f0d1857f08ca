"""A fit in processes the strategy spawned (``trainer.strategy=ddp_spawn``), seen from the process that
spawned them.

Lightning hands back to that process the best checkpoint's path, the trained weights and the callback
metrics, and nothing else of the trainer: its ``current_epoch`` stays 0 and its checkpoint callback's
``best_model_score`` ``None``. :class:`EpochsTrained` puts the epochs trained among the callback metrics
(not in the loggers), where :func:`epochs_trained` reads them. A stop of that process does not reach the
spawned ones: :func:`end_spawned_processes` ends them.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

#: the callback metric holding the epochs trained (logged to no logger)
EPOCHS_KEY = "lossbench/epochs_trained"


class EpochsTrained(Callback):
    """Logs the epochs trained so far as a callback metric at the end of each training epoch."""

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        pl_module.log(EPOCHS_KEY, float(trainer.current_epoch + 1), logger=False, sync_dist=True)


def epochs_trained(trainer: Any) -> int:
    """The epochs the fit trained: the trainer's own count, or the spawned processes' (:data:`EPOCHS_KEY`)."""
    handed_back = trainer.callback_metrics.get(EPOCHS_KEY)
    return max(trainer.current_epoch, int(handed_back)) if handed_back is not None else trainer.current_epoch


def end_spawned_processes(trainer: Any) -> None:
    """End the processes a strategy spawned to fit or test in (``ddp_spawn``), which a stop of this process
    does not reach: they would train on to ``max_epochs``, and this process would wait for them at exit.

    Lightning's handler for SIGTERM runs in those processes only, and there it broadcasts across ranks from
    inside the handler, which can leave ranks waiting on each other; so they are killed, as Lightning's
    launcher does with the processes of a stopped ``ddp`` run. Their checkpoints are whole (written
    atomically): ``last.ckpt`` holds the last epoch they saved. A fit in this process (one device, ``ddp``,
    whose process group this process joined) has nothing to end."""
    launcher = trainer.strategy.launcher
    if launcher is None or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    launcher.kill(getattr(signal, "SIGKILL", signal.SIGTERM))
    for child in multiprocessing.active_children():
        child.join(timeout=30)
