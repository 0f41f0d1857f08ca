"""The replicas of a packed group: what each replica's unpacked run would build, built the same way.

An unpacked run (:func:`lossbench.run.run`) seeds everything with its ``seed``, builds its data
(:func:`lossbench.build.build_data`), then its loss, model and module (:func:`lossbench.build.build_module`),
and starts training. :func:`build_replicas` does exactly that for each replica, so each replica's
initial weights are its run's, and keeps the global CPU generator's state at the end (where its run's
dropout masks start, see :mod:`lossbench.packed.dropout`). The group's runs share ``data_seed``, which their
data follows (:mod:`lossbench.data.seeding`), and building it leaves the generators seeded by the run's
``seed``: the first replica's data module serves them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torch import Tensor, nn

from lossbench.build import build_data, build_module
from lossbench.checks import check_run
from lossbench.errors import ConfigError, LossbenchError
from lossbench.failures import note_trained_loss
from lossbench.losses.base import BenchLoss
from lossbench.packed.packable import callback_names, packing_problems
from lossbench.task import BenchDataModule


@dataclass
class Replica:
    """One replica: its run's config, model, loss, optimizer and schedule, as its run builds them."""

    cfg: DictConfig  # with ``monitor`` resolved
    seed: int
    model: nn.Module
    loss: BenchLoss
    optimizer: Callable[..., torch.optim.Optimizer]
    scheduler: Callable[..., Any] | None
    scheduler_interval: str
    monitor: str
    mode: str
    gradient_clip_val: float | None
    gradient_clip_algorithm: str
    rng_state: Tensor  # the global CPU generator's state when its run would start training
    select_best: bool = True  # tested at its best epoch (its run keeps a best checkpoint), else its last
    python_rng_state: Any = None  # Python's generator state when its run would start training

    def parameters(self) -> list[nn.Parameter]:
        """The parameters its run optimizes, in its run's order (the model's, then the loss's)."""
        return [*self.model.parameters(), *self.loss.parameters()]


class ReplicaError(ConfigError):
    """Replica ``index``'s run refuses its config or data (``error``, as its run would raise it): that run
    alone fails, and the others can be packed without it."""

    def __init__(self, index: int, error: LossbenchError) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


def build_replicas(
    cfgs: Sequence[DictConfig], hydra_configs: Sequence[DictConfig] | None = None
) -> tuple[BenchDataModule, list[Replica]]:
    """The group's data module and its replicas, each built as its unpacked run builds it; with
    ``hydra_configs`` (each run's job config, Hydra's node included) each is built in its own job's Hydra
    config, so what it says names its own options. A run that refuses its config or data raises
    :class:`ReplicaError`."""
    problems = packing_problems(cfgs)
    if problems:
        raise ConfigError("these runs cannot be packed together: " + "; ".join(problems))
    dm: BenchDataModule | None = None
    replicas = []
    for k, cfg in enumerate(cfgs):
        if hydra_configs is not None:
            HydraConfig.instance().set_config(hydra_configs[k])
        try:
            check_run(cfg)
            L.seed_everything(cfg.seed, workers=True, verbose=False)
            if dm is None:  # the same for the group: its runs share data_seed, which the data follows
                dm = build_data(cfg)
            replicas.append(build_replica(cfg, dm))
        except LossbenchError as err:
            raise ReplicaError(k, err) from err
    assert dm is not None
    return dm, replicas


def build_replica(cfg: DictConfig, dm: BenchDataModule) -> Replica:
    """The replica of the run ``cfg`` on the data ``dm``, its model built now (the generators seeded)."""
    cfg, loss, module = build_module(cfg, dm)
    note_trained_loss(cfg.paths.output_dir, str(cfg.loss_name))  # a failure names it, as its run's does
    clip_algorithm = cfg.trainer.get("gradient_clip_algorithm") or "norm"
    if clip_algorithm not in ("norm", "value"):
        raise ConfigError(f"trainer.gradient_clip_algorithm={clip_algorithm}: choose norm or value")
    return Replica(
        cfg=cfg,
        seed=int(cfg.seed),
        model=module.model,
        loss=loss,
        optimizer=module.optimizer_factory,
        scheduler=module.scheduler_factory,
        scheduler_interval=module.scheduler_interval,
        monitor=cfg.monitor.metric,
        mode=cfg.monitor.mode,
        gradient_clip_val=cfg.trainer.get("gradient_clip_val"),
        gradient_clip_algorithm=clip_algorithm,
        rng_state=torch.get_rng_state(),
        python_rng_state=random.getstate(),
        select_best="model_checkpoint" in callback_names(cfg),
    )
