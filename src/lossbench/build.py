"""From the composed (and checked, :mod:`lossbench.checks`) config to the objects of a run.

:func:`build` instantiates a config node and re-raises our errors naming the override that fixes them;
:func:`build_data`, :func:`build_module` and :func:`build_trainer` make the data module, the loss + model +
LightningModule (with the monitored metric resolved from the task's :class:`~lossbench.task.TaskSpec`) and
the Trainer with its callbacks and loggers.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf, open_dict

from lossbench.argument_checks import added_data_key, check_options, located
from lossbench.batch_contract import BatchContract, check_first_batch
from lossbench.checkpointing import OverridesInCheckpoint
from lossbench.config import CONFIG_DIR, chosen, losses_for_task
from lossbench.data.prepare import prepare_once
from lossbench.data.seeding import seed_setup, seeded_by
from lossbench.errors import ConfigError, LossbenchError, LossTaskMismatchError, one_line
from lossbench.failures import note_trained_loss
from lossbench.loggers import build_loggers, init_wandb_run, wandb_config
from lossbench.losses.base import BenchLoss
from lossbench.models import build_model
from lossbench.module import LossBenchModule
from lossbench.schedulers import check_plateau_mode
from lossbench.spawned import EpochsTrained
from lossbench.step_contract import check_first_step
from lossbench.sweep_stop_watch import sweep_stop_callbacks
from lossbench.task import BenchDataModule, Task, check_data_contract, resolve_monitor, spec

log = logging.getLogger("lossbench")


def build(group: str, cfg: DictConfig, **kwargs: Any) -> Any:
    """``instantiate(cfg)``, re-raising our own errors unwrapped from Hydra's and naming the config key.

    ``FocalLoss(gamma=-1)`` raises "gamma=-1 is out of range..."; built from ``cfg.loss`` it becomes
    "loss.gamma=-1 is out of range...", the override that fixes it.
    """
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if str(err).startswith("Error locating target"):
            raise cannot_import(group, cfg.get("_target_"), cause) from None
        if not isinstance(cause, LossbenchError):
            raise
        message = str(cause)
        if re.match(r"^[A-Za-z_]\w*=", message):
            message = f"{group}.{message}"
        raise type(cause)(message) from None


def cannot_import(group: str, target: Any, cause: BaseException | None) -> ConfigError:
    """The error for a ``_target_`` of config group ``group`` that Python cannot import (``cause``: what
    Hydra said; what :func:`~lossbench.argument_checks.located` says of it, when it is an import path)."""
    try:
        located(str(target))
    except Exception as err:  # noqa: BLE001 - whatever importing it raises is what the user must fix
        cause = err
    return ConfigError(
        f"{group}._target_={target} cannot be imported ({one_line(cause)}): check the spelling, and that "
        "its package is installed or on PYTHONPATH"
    )


def build_lightning(key: str, cfg: DictConfig, **kwargs: Any) -> Any:
    """:func:`build` for a Lightning object (the Trainer, a callback): its refusal of an argument
    (``Trainer(precision=8)``, an unknown keyword) is one :class:`ConfigError` line naming ``key``, not
    Hydra's wrapped traceback."""
    try:
        return build(key, cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if not isinstance(cause, (TypeError, ValueError, MisconfigurationException)):
            raise
        raise ConfigError(
            f"{key} cannot be built: {one_line(cause)}; fix the {key}.* overrides (python train.py --cfg job "
            f"shows the {key} node)"
        ) from None


def build_loss(cfg: DictConfig, dm: BenchDataModule) -> BenchLoss:
    """Instantiate the loss and check it can serve the data set's task (before any training)."""
    try:
        loss_cls = located(str(cfg.loss._target_))
    except Exception as err:  # noqa: BLE001 - its module's own error too (a SyntaxError names its line)
        raise cannot_import("loss", cfg.loss._target_, err) from None
    if not (isinstance(loss_cls, type) and issubclass(loss_cls, BenchLoss)):
        raise ConfigError(
            f"loss._target_={cfg.loss._target_} is not a lossbench.losses.base.BenchLoss: subclass it, so "
            "the loss declares the tasks it serves and how its outputs become predictions (docs/extending.md)"
        )
    counts = dm.class_counts if getattr(loss_cls, "needs_class_counts", False) else None
    extra = {"class_counts": counts.tolist()} if counts is not None else {}  # None: a regression task
    loss: BenchLoss = build("loss", cfg.loss, **extra)
    if loss.reduction == "none":
        raise ConfigError(
            "loss.reduction='none' gives one loss per sample, which cannot be minimised as it is: "
            "train with loss.reduction=mean (the default) or sum"
        )
    try:
        loss.check_task(dm.task, dm.num_classes)
    except LossTaskMismatchError as err:
        valid = ", ".join(losses_for_task(dm.task))
        raise LossTaskMismatchError(
            f"loss={chosen('loss', type(loss).__name__)} cannot train on data={chosen('data')}: {err}. "
            f"Choose one of loss={valid}"
        ) from None
    return loss


def build_data(cfg: DictConfig, fitted: dict[str, Any] | None = None) -> BenchDataModule:
    """Instantiate ``cfg.data``, fetch its files (``prepare_data``, once per node) and set it up for fitting;
    ``fitted``: the ``data_info`` of the run whose checkpoint is tested, whose target units and table
    encoding a built-in data module takes instead of fitting its own (``lossbench-eval``).

    ``prepare_data`` runs here because the model's shape comes from the data (see
    :mod:`lossbench.data.prepare`); Lightning calls it again in ``fit`` (a no-op once the files are there).
    """
    with seeded_by(cfg.data_seed, cfg.seed):  # a user's module may draw its split from the global ones
        dm = _instantiated_data(cfg, fitted)
    check_data_contract(dm, f"data={chosen('data')}")
    check_first_batch(dm, f"data={chosen('data')}", cfg.trainer.get("precision"))
    log.debug("data=%s: %s", chosen("data"), describe_data(dm))
    return dm


def _instantiated_data(cfg: DictConfig, fitted: dict[str, Any] | None) -> BenchDataModule:
    """``cfg.data`` instantiated, its files fetched and set up for fitting (see :func:`build_data`)."""
    try:
        dm = build("data", cfg.data)
    except InstantiationException as err:
        cause = err.__cause__
        about_arguments = isinstance(cause, TypeError) and re.search(
            r"unexpected keyword argument|missing \d+ required", str(cause)
        )
        if not about_arguments:
            raise
        if chosen("data") == "datamodule":  # the keys are the user's own +data.<arg>=...
            raise ConfigError(
                f"data._target_={cfg.data.get('_target_')} could not be built with its +data.<arg> keys "
                f"({err.__cause__}): give only the arguments it takes (lossbench's stressors, such as "
                "data.imbalance_factor, are arguments of modules built on "
                "lossbench.data.base.InMemoryDataModule)"
            ) from None
        if (added := added_data_key(cfg.data, chosen("data"), cause)) is not None:
            raise ConfigError(added) from None
        raise ConfigError(
            f"data._target_={cfg.data.get('_target_')} could not be built with the keys of data="
            f"{chosen('data')} ({err.__cause__}): start from data=datamodule, which holds only _target_ "
            "(python train.py data=datamodule data._target_=mypkg.MyDataModule +data.<arg>=...)"
        ) from None
    if fitted and isinstance(getattr(dm, "fitted", None), dict):
        dm.fitted = fitted
    if isinstance(getattr(dm, "tested", None), bool):  # lossbench's own modules check the splits it reads
        dm.tested = bool(cfg.get("test", True))
    prepare_once(dm)  # on local rank 0; the other local ranks wait for it when all start at once
    seed_setup(dm, cfg.data_seed)  # this call and Lightning's later ones draw one split from data_seed
    dm.setup("fit")
    return dm


def describe_data(dm: BenchDataModule) -> dict[str, Any]:
    """The contract's fields for ``metrics.json``, with what the data module's own ``describe()`` adds or
    says of them (a field of the contract it leaves out, or gives as ``None``, is the contract's)."""
    counts = dm.class_counts
    contract = {
        "task": str(dm.task),
        "num_classes": dm.num_classes,
        "num_targets": dm.num_targets,
        "input_shape": list(dm.input_shape),
        "class_counts": [int(c) for c in counts] if counts is not None else None,
    }
    if not callable(getattr(dm, "describe", None)):
        return contract
    described = dm.describe()
    return {**described, **{k: v for k, v in contract.items() if described.get(k) is None and v is not None}}


def data_info_of(dm: BenchDataModule) -> dict[str, Any]:
    """A run's ``data_info`` (its record's, its checkpoints'): :func:`describe_data`, with the task whatever
    the module describes."""
    return {"task": str(dm.task), **describe_data(dm)}


def with_task_loss(cfg: DictConfig, task: Task) -> DictConfig:
    """``cfg`` with ``loss=auto`` replaced by the task's baseline loss config (``ce``, ``bce``, ``mse``);
    keys added to it (``+loss.label_smoothing=0.1``) carry over to that loss."""
    if not cfg.loss.get("auto"):
        return cfg
    name = spec(task).baseline
    if rank_zero_only.rank == 0:  # once, not once per DDP process
        log.info("loss=auto: %s, the baseline loss of %s data (choose another with loss=<name>)", name, task)
    added = {k: v for k, v in cfg.loss.items() if k != "auto"}
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.loss = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"), added)
        cfg.loss_name = name  # the loggers' tags and the run record name the loss trained
    return cfg


def build_module(cfg: DictConfig, dm: BenchDataModule) -> tuple[DictConfig, BenchLoss, LossBenchModule]:
    """The loss, the model shaped for the data and the loss, and the LightningModule training them.

    Returns the config with ``monitor`` filled (a null ``monitor.metric`` is the task's default, a null
    ``monitor.mode`` the metric's direction, see :func:`~lossbench.task.resolve_monitor`), so the
    callbacks' ``${monitor.metric}`` resolve to it; ``cfg`` itself is left as it was.
    """
    cfg = with_task_loss(cfg, dm.task)
    check_options(cfg)
    loss = build_loss(cfg, dm)
    try:
        model = build_model(  # instantiate(cfg.model, ...) + the shared model.compile / model.channels_last
            cfg.model,
            input_shape=dm.input_shape,
            num_outputs=loss.num_outputs(dm.task, dm.num_classes, dm.num_targets),
        )
    except InstantiationException as err:
        if isinstance(err.__cause__, LossbenchError):  # the model's own message names the fix
            raise err.__cause__ from None
        if str(err).startswith("Error locating target"):
            raise cannot_import("model", cfg.model.get("_target_"), err.__cause__) from None
        raise
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(
            f"model={chosen('model')} ({cfg.model.get('_target_')}) has no parameters to train: the "
            "optimizer would get none"
        )
    module = LossBenchModule(
        model=model,
        loss=loss,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
        scheduler_interval=cfg.optim.get("scheduler_interval", "epoch"),
        task=dm.task,
        num_classes=dm.num_classes,
        nonfinite_every_n_steps=cfg.nonfinite_check.every_n_steps,
    )
    if not cfg.model.get("compile"):  # a compiled model would compile for the probe's shapes
        check_first_step(module, dm.task, dm.num_classes, dm.num_targets, dm.input_shape)
    metric, mode = resolve_monitor(
        cfg.monitor.metric, cfg.monitor.mode, dm.task, module.metric_directions(), dm.class_counts
    )
    module.monitor = metric  # what a ReduceLROnPlateau schedule follows
    check_plateau_mode(cfg.optim.get("scheduler"), metric, mode)
    return OmegaConf.merge(cfg, {"monitor": {"metric": metric, "mode": mode}}), loss, module


def build_trainer(
    cfg: DictConfig,
    config: dict[str, Any],
    overrides: list[str],
    wandb_id: str | None,
    *,
    fit: bool = True,
    extra_callbacks: list[Any] | None = None,
) -> Any:
    """The Trainer with the configured loggers (W&B gets the resolved ``config`` and ``wandb_id``) and, to
    fit, the configured callbacks, ``extra_callbacks`` and the stamp of every checkpoint (the overrides and
    the data's ``data_info``).

    A Trainer only to test (``fit=False``) writes no checkpoints and runs none of the configured callbacks
    (only :class:`~lossbench.batch_contract.BatchContract`, which checks a user's test batches).
    """
    loggers = build_loggers(cfg.get("logger"), config=wandb_config(config, overrides), wandb_id=wandb_id)
    if not fit:
        return build_lightning(
            "trainer",
            cfg.trainer,
            logger=loggers or False,
            enable_checkpointing=False,
            callbacks=[BatchContract()],
        )
    nodes = (cfg.get("callbacks") or {}).items()
    callbacks = [build_lightning(f"callbacks.{name}", c) for name, c in nodes if c is not None]
    if not cfg.trainer.get("enable_progress_bar", True):  # no bar asked: the configured one is left out
        from lightning.pytorch.callbacks import ProgressBar

        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks += [*(extra_callbacks or []), OverridesInCheckpoint(overrides), BatchContract()]
    callbacks += [EpochsTrained(), *sweep_stop_callbacks()]
    trainer = build_lightning("trainer", cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log.debug(
        "Trainer: precision %s, %d device(s), callbacks %s, loggers %s",
        trainer.precision,
        trainer.num_devices,
        [type(c).__name__ for c in trainer.callbacks],
        [type(lg).__name__ for lg in trainer.loggers],
    )
    note_trained_loss(cfg.paths.output_dir, str(cfg.loss_name))  # the run starts: a failure names this loss
    if trainer.world_size == 1:
        init_wandb_run(loggers)  # now rather than lazily in fit, so setup time is measured apart
    return trainer
