"""Learning-rate schedules the presets need that torch does not ship as one object."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

from lossbench.errors import check_range


class WarmupMultiStepFactor:
    """``factor(epoch)``: linear warm-up ``(e+1)/warmup`` for the first ``warmup`` epochs, then
    ``gamma ** (number of milestones <= e)``. A picklable callable, so ``LambdaLR`` checkpoints it."""

    def __init__(self, warmup: int, milestones: Sequence[int], gamma: float) -> None:
        self.warmup, self.milestones, self.gamma = (
            int(warmup),
            sorted(int(m) for m in milestones),
            float(gamma),
        )

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        return self.gamma ** sum(epoch >= m for m in self.milestones)


def warmup_multistep(
    optimizer: torch.optim.Optimizer,
    warmup_epochs: int = 5,
    milestones: Sequence[int] = (160, 180),
    gamma: float = 0.1,
) -> LambdaLR:
    """Linear warm-up then step decay, stepped once per epoch (``optim.scheduler_interval: epoch``).

    With the defaults: lr·1/5 … lr·5/5 over epochs 0–4, lr until epoch 159, lr·0.1 from 160 and
    lr·0.01 from 180 — the CIFAR-LT recipe of Cui et al. (2019) / Cao et al. (2019) up to their decay
    factor (LDAM's code decays ×0.01 then ×0.0001; set ``gamma`` accordingly).
    """
    check_range("optim.scheduler.warmup_epochs", warmup_epochs, 0)
    check_range("optim.scheduler.gamma", gamma, 0.0, 1.0, low_inclusive=False)
    return LambdaLR(optimizer, WarmupMultiStepFactor(warmup_epochs, milestones, gamma))
