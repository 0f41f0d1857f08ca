"""When Lightning's training epoch ends, seen from ``on_train_batch_end``.

Lightning leaves an epoch's training loop after a batch when the epoch's batches are done
(``trainer.is_last_batch``), when ``trainer.max_steps`` optimizer steps are reached, or when
``trainer.should_stop`` is set (a callback, ``trainer.max_time``) and ``trainer.min_epochs`` /
``trainer.min_steps`` allow stopping. A metric logged ``on_epoch`` covers the batches trained up to then,
so the epoch's training loss, which lossbench logs from that last batch, does too. A stop set after that
batch's hooks (early stopping in a validation in mid-epoch) is seen at the epoch's end, which then logs it.
"""

from __future__ import annotations

from typing import Any


def epoch_ends_with_this_batch(trainer: Any) -> bool:
    """Whether the training epoch ends after the batch whose ``on_train_batch_end`` is running."""
    if trainer.is_last_batch:
        return True
    if trainer.max_steps is not None and trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return True
    if not trainer.should_stop:
        return False
    met_min_epochs = trainer.current_epoch >= trainer.min_epochs if trainer.min_epochs else True
    met_min_steps = trainer.global_step >= trainer.min_steps if trainer.min_steps else True
    return met_min_epochs and met_min_steps


def log_epoch_train_loss(module: Any, value: Any) -> None:
    """Log the epoch's training loss ``value``: for callbacks and the progress bar as an epoch value, and
    to the loggers at the step Lightning gives the validation metrics that follow the epoch's last batch
    (it counts that batch after them)."""
    module.log("train/loss", value, on_step=False, on_epoch=True, batch_size=1, logger=False, prog_bar=True)
    step = module.global_step - 1
    for logger in module.loggers:  # rank-zero-only loggers: no-ops on other ranks
        logger.log_metrics({"train/loss": float(value), "epoch": module.current_epoch}, step=step)
