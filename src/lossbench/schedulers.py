"""Learning-rate schedules the presets need that torch does not ship as one object."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from lossbench.errors import ConfigError, check_range
from lossbench.value_checks import PLATEAU


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
    factor (they decay by 0.01 at each milestone: ``gamma=0.01``, as ``optim=sgd_warmup_multistep_lt`` sets).
    """
    check_range("optim.scheduler.warmup_epochs", warmup_epochs, 0)
    check_range("optim.scheduler.gamma", gamma, 0.0, 1.0, low_inclusive=False)
    return LambdaLR(optimizer, WarmupMultiStepFactor(warmup_epochs, milestones, gamma))


def schedule_length(factory: Callable[..., Any], interval: str, stepping_batches: int) -> dict[str, int]:
    """``total_steps=stepping_batches`` for a schedule that takes ``total_steps`` (``OneCycleLR``) when its
    config leaves it and ``epochs`` unset, the usual Lightning recipe."""
    func = getattr(factory, "func", factory)
    keywords = getattr(factory, "keywords", {})
    try:
        takes_total = "total_steps" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    if not takes_total or keywords.get("total_steps") is not None or keywords.get("epochs") is not None:
        return {}
    if interval != "step":
        raise ConfigError(
            f"{getattr(func, '__name__', func)} counts optimizer steps: set optim.scheduler_interval=step"
        )
    return {"total_steps": int(stepping_batches)}


def is_plateau(scheduler: Any) -> bool:
    """Whether ``scheduler`` follows a validation metric (``ReduceLROnPlateau``)."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def check_plateau_mode(scheduler: Any, metric: str, mode: str) -> None:
    """Warn when a ``ReduceLROnPlateau`` schedule (``optim.scheduler``, which follows ``monitor.metric``)
    ranks the metric against ``monitor.mode``: in ``min`` mode on ``val/acc`` it cuts the rate at every epoch
    that raises the accuracy."""
    if not scheduler or scheduler.get("_target_") != PLATEAU:
        return
    own = scheduler.get("mode", "min")
    if own != mode:
        logging.getLogger("lossbench").warning(
            "optim.scheduler (ReduceLROnPlateau, mode=%s) follows %s, which monitor.mode=%s ranks: it cuts "
            "the learning rate whenever %s does not %s; set optim.scheduler.mode=%s",
            own,
            metric,
            mode,
            metric,
            "fall" if own == "min" else "rise",
            mode,
        )


#: the checkpoint entry saying that an epoch-end ReduceLROnPlateau step came after it (see
#: :func:`catch_up_plateau`)
PLATEAU_DUE_KEY = "lossbench_plateau_step_due"


def catch_up_plateau(trainer: Any, val: dict[str, float] | None) -> None:
    """Lightning steps a ``ReduceLROnPlateau`` schedule at an epoch's end, after that epoch's checkpoints,
    and on a resume not again for the epoch a checkpoint ended (its metrics are not in the checkpoint), so
    a continued run trained on with one plateau step fewer than its uninterrupted run. ``val``: the
    validation metrics of a checkpoint written before such a step (None: nothing is due); each plateau
    schedule takes the step on the metric it follows."""
    for config in trainer.lr_scheduler_configs if val else []:
        if is_plateau(config.scheduler) and config.interval == "epoch" and config.monitor in val:
            config.scheduler.step(val[config.monitor])


def lr_scheduler_config(
    factory: Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    interval: str,
    stepping_batches: int,
    monitor: str | None,
) -> dict[str, Any]:
    """The ``lr_scheduler`` entry a run's ``configure_optimizers`` returns to Lightning: the schedule built
    for ``optimizer`` (sized by :func:`schedule_length`), its ``interval``, and for ``ReduceLROnPlateau``
    the ``monitor``ed metric it follows."""
    scheduler = factory(optimizer, **schedule_length(factory, interval, stepping_batches))
    config: dict[str, Any] = {"scheduler": scheduler, "interval": interval}
    if is_plateau(scheduler):
        if not monitor:
            raise ConfigError(
                "optim.scheduler=ReduceLROnPlateau follows a validation metric: set monitor.metric "
                "(e.g. monitor.metric=val/loss)"
            )
        config["monitor"] = monitor
    return config
