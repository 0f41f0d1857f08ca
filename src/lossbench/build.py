"""From the composed config to the objects of a run, each checked before any training.

:func:`build` instantiates a config node and re-raises our errors naming the override that fixes them;
``check_*`` refuse trainer options torch or Lightning would only reject mid-run (or never).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from lossbench.config import chosen, losses_for_task
from lossbench.data.prepare import prepare_once
from lossbench.errors import ConfigError, LossbenchError, LossTaskMismatchError, check_choice, check_range
from lossbench.losses.base import BenchLoss
from lossbench.models import build_model
from lossbench.module import LossBenchModule
from lossbench.sweep import one_line
from lossbench.task import BenchDataModule, check_data_contract


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
            raise ConfigError(
                f"{group}._target_={cfg.get('_target_')} cannot be imported ({one_line(cause)}): check the "
                "spelling, and that its package is installed or on PYTHONPATH"
            ) from None
        if not isinstance(cause, LossbenchError):
            raise
        message = str(cause)
        if re.match(r"^[A-Za-z_]\w*=", message):
            message = f"{group}.{message}"
        raise type(cause)(message) from None


def check_accelerator(cfg: DictConfig) -> None:
    """Fail before any work when the trainer asks for a GPU that is not there."""
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer={chosen('trainer')} needs a CUDA GPU (trainer.accelerator={accelerator}) but none is "
            "visible: use trainer=cpu, or trainer=ddp_cpu for the DDP code path on CPU"
        )


def check_trainer_options(cfg: DictConfig) -> None:
    """The Trainer's optimization options, checked before any work with errors naming the override."""
    trainer = cfg.trainer
    check_range("trainer.gradient_clip_val", trainer.get("gradient_clip_val") or 0.0, 0.0)
    if trainer.get("gradient_clip_algorithm") is not None:
        check_choice("trainer.gradient_clip_algorithm", trainer.gradient_clip_algorithm, ("norm", "value"))
    check_range("trainer.accumulate_grad_batches", trainer.get("accumulate_grad_batches", 1), 1)
    if trainer.get("max_epochs") is not None and (trainer.get("max_steps") or -1) == -1:
        check_range("trainer.max_epochs", trainer.max_epochs, 1)  # 0 would "finish" an untrained model
    lr = OmegaConf.select(cfg, "optim.optimizer.lr", default=None)
    if lr is not None:
        check_range("optim.optimizer.lr", lr, 0.0, low_inclusive=False)
    for key in ("seed", "data_seed"):
        check_range(key, cfg.get(key, 0), 0, 2**32 - 1)  # the range torch's and NumPy's seeding accept


def build_loss(cfg: DictConfig, dm: BenchDataModule) -> BenchLoss:
    """Instantiate the loss and check it can serve the data set's task (before any training)."""
    loss_cls = get_class(cfg.loss._target_)
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


def build_data(cfg: DictConfig) -> BenchDataModule:
    """Instantiate ``cfg.data``, fetch its files (``prepare_data``, once per node) and set it up for fitting.

    ``prepare_data`` runs here because the model's shape comes from the data (see
    :mod:`lossbench.data.prepare`); Lightning calls it again in ``fit`` (a no-op once the files are there).
    """
    try:
        dm = build("data", cfg.data)
    except InstantiationException as err:
        cause = err.__cause__
        about_arguments = isinstance(cause, TypeError) and re.search(
            r"unexpected keyword argument|missing \d+ required", str(cause)
        )
        if not about_arguments:
            raise
        raise ConfigError(
            f"data._target_={cfg.data.get('_target_')} could not be built with the keys of data="
            f"{chosen('data')} ({err.__cause__}): start from data=datamodule, which holds only _target_ "
            "(python train.py data=datamodule data._target_=mypkg.MyDataModule +data.<arg>=...)"
        ) from None
    prepare_once(dm)  # on local rank 0; the other local ranks wait for it when all start at once
    dm.setup("fit")
    check_data_contract(dm, f"data={chosen('data')}")
    return dm


def describe_data(dm: BenchDataModule) -> dict[str, Any]:
    """The data module's own ``describe()`` for ``metrics.json``, or the contract's fields."""
    if callable(getattr(dm, "describe", None)):
        return dm.describe()
    counts = dm.class_counts
    return {
        "task": str(dm.task),
        "num_classes": dm.num_classes,
        "num_targets": dm.num_targets,
        "input_shape": list(dm.input_shape),
        "class_counts": [int(c) for c in counts] if counts is not None else None,
    }


def build_module(cfg: DictConfig, dm: BenchDataModule) -> tuple[BenchLoss, Any, LossBenchModule]:
    """The loss, the model shaped for the data and the loss, and the LightningModule training them."""
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
        raise
    module = LossBenchModule(
        model=model,
        loss=loss,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
        scheduler_interval=cfg.optim.get("scheduler_interval", "epoch"),
        task=dm.task,
        num_classes=dm.num_classes,
        monitor=cfg.monitor.metric,
        nonfinite_every_n_steps=cfg.nonfinite_check.every_n_steps,
    )
    return loss, model, module
