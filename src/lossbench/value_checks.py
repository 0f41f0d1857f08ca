"""Values of the optimizer, schedule, early-stopping, monitor and model options that torch or Lightning
refuse only mid-run (with a traceback), or never (a run that trains on them silently goes wrong).

Each ``*_problems`` function yields one phrase per problem, for :func:`lossbench.checks.check_run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench.errors import ConfigError, check_range

#: schedule lengths (in epochs or steps) that must be at least 1: a 0 divides by zero mid-epoch
SCHEDULE_LENGTHS = ("T_max", "T_0", "step_size", "total_steps")
#: width keys of lossbench's models: a positive integer, or a list of them (``LIST_WIDTHS``)
MODEL_WIDTHS = ("hidden_dims", "channels", "hidden", "width")
LIST_WIDTHS = ("hidden_dims", "channels")
#: schedules whose own options count epochs (besides any value that follows ``trainer.max_epochs``)
EPOCH_COUNTS = {"lossbench.schedulers.warmup_multistep": ("warmup_epochs", "milestones")}
PLATEAU = "torch.optim.lr_scheduler.ReduceLROnPlateau"


def problem(check: Callable[[], Any]) -> Iterator[str]:
    try:
        check()
    except ConfigError as err:
        yield str(err)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _node(cfg: DictConfig, key: str) -> DictConfig | None:
    node = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    return node if isinstance(node, DictConfig) else None


def optimizer_problems(cfg: DictConfig) -> Iterator[str]:
    """``weight_decay`` ≥ 0, ``momentum`` and each of ``betas`` in [0, 1) (torch takes a momentum above 1,
    which diverges)."""
    node = _node(cfg, "optim.optimizer")
    if node is None:
        return
    decay = node.get("weight_decay")
    if is_number(decay):
        yield from problem(lambda: check_range("optim.optimizer.weight_decay", decay, 0.0))
    momentum = node.get("momentum")
    if is_number(momentum):
        yield from problem(
            lambda: check_range("optim.optimizer.momentum", momentum, 0.0, 1.0, high_inclusive=False)
        )
    betas = node.get("betas")
    if OmegaConf.is_list(betas):
        for i, beta in enumerate(betas):
            yield from problem(
                lambda i=i, beta=beta: check_range(
                    f"optim.optimizer.betas[{i}]", beta, 0.0, 1.0, high_inclusive=False
                )
            )


def scheduler_problems(cfg: DictConfig) -> Iterator[str]:
    """A schedule length of 0, a decay factor ≤ 0, a plateau ``factor`` outside (0, 1), and a schedule
    stepped otherwise than it counts (:func:`interval_problems`)."""
    node = _node(cfg, "optim.scheduler")
    if node is None or len(node) == 0:  # {}: no schedule, as the Trainer's build reads it
        return
    raw = OmegaConf.to_container(node, resolve=False)
    if "_target_" not in node:  # keys a preset sets for the optim option it chose, on top of another one's
        keys = ", ".join(str(k) for k in node)
        yield (
            f"optim.scheduler holds {keys} but no _target_: nothing builds a schedule of them; choose the "
            "optim=... they were written for (an experiment= preset names it), or set "
            "optim.scheduler._target_"
        )
        return
    yield from interval_problems(cfg, node, raw if isinstance(raw, dict) else {})
    for key in SCHEDULE_LENGTHS:
        value = node.get(key)
        if not is_number(value) or value >= 1:
            continue
        source = raw.get(key) if isinstance(raw, dict) else None
        follows = (
            f" (it is {source}: set optim.scheduler.{key} itself)" if str(source).startswith("${") else ""
        )
        yield f"optim.scheduler.{key}={value!r} is out of range: a schedule needs at least 1 step{follows}"
    warmup = node.get("warmup_epochs")
    if is_number(warmup):  # 0: no warm-up
        yield from problem(lambda: check_range("optim.scheduler.warmup_epochs", warmup, 0))
    gamma = node.get("gamma")
    if is_number(gamma):
        yield from problem(lambda: check_range("optim.scheduler.gamma", gamma, 0.0, low_inclusive=False))
    factor = node.get("factor")
    if is_number(factor) and "Plateau" in str(node.get("_target_", "")):
        yield from problem(
            lambda: check_range(
                "optim.scheduler.factor", factor, 0.0, 1.0, low_inclusive=False, high_inclusive=False
            )
        )


def interval_problems(cfg: DictConfig, node: DictConfig, raw: dict[Any, Any]) -> Iterator[str]:
    """A schedule counted in epochs but stepped after every optimizer step (``optim.scheduler_interval=
    step``: its whole length passes in the first few batches, then it starts over or stays at its end), and
    a ``ReduceLROnPlateau`` stepped where its metric is not computed (Lightning stops the run there)."""
    interval = OmegaConf.select(cfg, "optim.scheduler_interval", default="epoch", throw_on_missing=False)
    target = str(node.get("_target_", ""))
    if interval == "step" and target != PLATEAU:
        in_epochs = [f"{k}={v}" for k, v in raw.items() if isinstance(v, str) and "trainer.max_epochs" in v]
        in_epochs += [f"{k}={raw[k]}" for k in EPOCH_COUNTS.get(target, ()) if k in raw]
        if in_epochs:
            yield (
                "optim.scheduler_interval=step steps the schedule after every optimizer step, but "
                f"optim.scheduler's {', '.join(in_epochs)} count epochs: keep "
                "optim.scheduler_interval=epoch, or give them in optimizer steps"
            )
    if target != PLATEAU:
        return
    every = OmegaConf.select(cfg, "trainer.check_val_every_n_epoch", default=1, throw_on_missing=False)
    if interval == "step":
        yield (
            "optim.scheduler=ReduceLROnPlateau follows monitor.metric, a validation metric the first "
            "training steps do not have (the run would stop at its first step): set "
            "optim.scheduler_interval=epoch"
        )
    elif isinstance(every, int) and every > 1:
        yield (
            f"optim.scheduler=ReduceLROnPlateau steps at every epoch's end on monitor.metric, which "
            f"trainer.check_val_every_n_epoch={every} computes every {every} epochs only (the run would stop "
            "after its first epoch): validate every epoch, or use a schedule that follows no metric"
        )


def callback_problems(cfg: DictConfig) -> Iterator[str]:
    """Early stopping's ``patience`` ≥ 0 and ``min_delta`` ≥ 0 (a negative one reverses what counts as an
    improvement)."""
    node = _node(cfg, "callbacks.early_stopping")
    if node is None:
        return
    patience, delta = node.get("patience"), node.get("min_delta")
    if is_number(patience):
        yield from problem(lambda: check_range("callbacks.early_stopping.patience", patience, 0))
    if is_number(delta):
        yield from problem(lambda: check_range("callbacks.early_stopping.min_delta", delta, 0.0))


def monitor_problems(cfg: DictConfig) -> Iterator[str]:
    """``monitor.mode``: min, max or null (the metric's direction)."""
    mode = OmegaConf.select(cfg, "monitor.mode", default=None, throw_on_missing=False)
    if mode is not None and mode not in ("min", "max"):
        yield f"monitor.mode={mode!r} is not valid: choose min, max, or null (the metric's direction)"


def model_problems(cfg: DictConfig) -> Iterator[str]:
    """lossbench's models: ``dropout`` in [0, 1), widths positive integers."""
    node = _node(cfg, "model")
    if node is None or not str(node.get("_target_", "")).startswith("lossbench.models."):
        return
    dropout = node.get("dropout")
    if is_number(dropout):
        yield from problem(lambda: check_range("model.dropout", dropout, 0.0, 1.0, high_inclusive=False))
    for key in MODEL_WIDTHS:
        value = node.get(key)
        listed = key in LIST_WIDTHS
        values = list(value) if listed and OmegaConf.is_list(value) else [value]
        if value is None or (listed == OmegaConf.is_list(value) and all(_positive_int(v) for v in values)):
            continue
        shape = "a list of positive integers, e.g. [256, 256]" if listed else "a positive integer"
        shown = OmegaConf.to_container(value) if OmegaConf.is_list(value) else value
        yield f"model.{key}={shown!r} is not valid: give {shape}"


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def value_problems(cfg: DictConfig) -> Iterator[str]:
    """Every problem of the option values above."""
    for problems in (
        optimizer_problems,
        scheduler_problems,
        callback_problems,
        monitor_problems,
        model_problems,
    ):
        yield from problems(cfg)
