"""The NaN/Inf guard of the training loss: checked on the device, read by the host only every N steps.

Reading a CUDA tensor's value (``loss.item()``) waits for the GPU to finish everything queued before it,
so a check that reads every step stalls the GPU's queue once per step. :class:`NonFiniteGuard` instead
keeps, on the loss's device, the first step whose loss was not finite and that loss's value (two
``torch.where`` updates, no host read), and the host reads them every ``every_n_steps`` steps, before
every validation, at the end of each training epoch and before any checkpoint is written. The run then
stops with :class:`~lossbench.errors.NonFiniteLossError` naming the first bad step.

Between a bad step and the next read the weights in memory may take up to ``every_n_steps - 1``
updates from non-finite gradients, but no checkpoint is ever written from them: the read before every
checkpoint raises first, so ``last.ckpt`` and the best checkpoint hold the last good weights. With
``every_n_steps=1`` (the default on a single CPU process, where a read costs nothing) the check runs
before the backward pass and a bad loss never reaches the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from lossbench.errors import NonFiniteLossError, check_range

#: steps between host reads of the flag when a read costs a device sync (GPU) or a collective (DDP)
DEFAULT_EVERY_N_STEPS = 100


def non_finite_message(loss_name: str, value: float, step: int, epoch: int) -> str:
    """What a run stopped by its loss ``loss_name`` returning ``value`` at ``step`` (-1: on another
    process) of ``epoch`` says, with the fixes to try."""
    where = f"at step {step}" if step >= 0 else "on another process"
    if step == 0:  # no update yet: the initial weights and the first batch give it, whatever the lr
        return (
            f"{loss_name} returned {value} at step 0 (epoch {epoch}), before any update, so the learning "
            "rate is not the cause: check the data for NaN/Inf and the loss itself on the first batch"
        )
    return (
        f"{loss_name} returned {value} {where} (epoch {epoch}): lower the learning rate "
        "(optim.optimizer.lr), check the data for NaN/Inf, or clip gradients (trainer.gradient_clip_val=1.0)"
    )


def with_last_checkpoint(message: str, last: Path | None) -> str:
    """``message`` (:func:`non_finite_message`) with where the run's last good weights are: ``last``, its
    ``last.ckpt`` when one was written before the bad step."""
    saved = f"the last good checkpoint is {last}" if last else "no checkpoint was written before it"
    return f"{message}; {saved}"


def default_every_n_steps(device: torch.device, world_size: int) -> int:
    """1 where a read is free (one CPU process); :data:`DEFAULT_EVERY_N_STEPS` otherwise."""
    return 1 if device.type == "cpu" and world_size == 1 else DEFAULT_EVERY_N_STEPS


class NonFiniteGuard:
    """Records non-finite training losses on the device; :meth:`read` raises for the first one.

    Args:
        every_n_steps: host reads every this many :meth:`observe` calls (1: read at once, before the
            backward pass).
        describe: turns ``(value, step)`` into the error message.
        any_rank: reduces the "found" flag over processes (DDP), so that every rank stops together;
            ``None``: this process alone.
    """

    def __init__(
        self,
        every_n_steps: int,
        describe: Callable[[float, int], str],
        any_rank: Callable[[bool], bool] | None = None,
    ) -> None:
        self.every_n_steps = int(check_range("nonfinite_check.every_n_steps", every_n_steps, 1))
        self.describe, self.any_rank = describe, any_rank
        self._calls = 0
        self._bad_step: Tensor | None = None  # -1 while every loss was finite
        self._bad_value: Tensor | None = None

    def observe(self, loss: Tensor, step: int) -> None:
        """Check one step's loss (a scalar tensor); reads the flag when ``every_n_steps`` calls passed."""
        self._calls += 1
        if self.every_n_steps == 1 and self.any_rank is None:
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(self.describe(value, step))
            return
        loss = loss.detach()
        if self._bad_step is None:
            self._bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._bad_value = torch.zeros((), dtype=torch.float32, device=loss.device)
        first = torch.logical_not(torch.isfinite(loss)) & (self._bad_step < 0)
        self._bad_step = torch.where(first, step, self._bad_step)
        self._bad_value = torch.where(first, loss.float(), self._bad_value)
        if self._calls % self.every_n_steps == 0:
            self.read()

    def read(self) -> None:
        """Raise :class:`NonFiniteLossError` if any loss observed so far was not finite (one host read)."""
        bad_step = int(self._bad_step) if self._bad_step is not None else -1
        found = bad_step >= 0
        if self.any_rank is not None:
            found = self.any_rank(found)
        if not found:
            return
        if bad_step < 0:  # another rank's loss
            raise NonFiniteLossError(self.describe(math.nan, -1))
        raise NonFiniteLossError(self.describe(float(self._bad_value), bad_step))
