"""The replicas of a packed group: what each replica's unpacked run would build, built the same way.

An unpacked run (:func:`lossbench.run.run`) seeds everything with its ``seed``, builds its data
(:func:`lossbench.build.build_data`), then its loss, model and module (:func:`lossbench.build.build_module`),
and starts training. :func:`build_replicas` does exactly that for each replica, so each replica's
initial weights are its run's, and keeps the global CPU generator's state at the end (where its run's
dropout masks start, see :mod:`lossbench.packed.dropout`). Building the data is replayed for each
replica unless building it the first time left every random generator (torch, NumPy, Python) as it was,
in which case the first replica's data module serves them all.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from lossbench.build import build_data, build_module
from lossbench.checks import check_run
from lossbench.errors import ConfigError
from lossbench.losses.base import BenchLoss
from lossbench.packed.models import PACKED_TARGETS
from lossbench.selection import TIE_BREAK
from lossbench.task import BenchDataModule

#: trainer keys each replica may set for itself
PER_REPLICA_TRAINER_KEYS = ("gradient_clip_val", "gradient_clip_algorithm", "default_root_dir")
#: callbacks a packed group reproduces (the best checkpoint as each replica's best epoch) or may leave out
#: (the last checkpoint, the progress bar, the learning-rate monitor: none changes what is trained)
PACKED_CALLBACKS = ("model_checkpoint", "last_checkpoint", "rich_progress_bar", "lr_monitor")


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


def random_states() -> tuple[Any, ...]:
    """The torch, NumPy and Python generators' states."""
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def same_states(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two :func:`random_states` are the same."""
    np_a, np_b = a[1], b[1]
    same_numpy = np_a[0] == np_b[0] and np.array_equal(np_a[1], np_b[1]) and np_a[2:] == np_b[2:]
    return bool(torch.equal(a[0], b[0])) and same_numpy and a[2] == b[2]


def callback_names(cfg: DictConfig) -> list[str]:
    """The run's callbacks (the keys of ``callbacks`` that are set)."""
    return sorted(k for k, v in (cfg.get("callbacks") or {}).items() if v is not None)


def group_key(cfg: DictConfig) -> dict[str, Any]:
    """What replicas of one packed group share: data (but its ``seed``), split, model, trainer, callbacks."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    data = {k: v for k, v in resolved["data"].items() if k != "seed"}
    trainer = {k: v for k, v in resolved["trainer"].items() if k not in PER_REPLICA_TRAINER_KEYS}
    return {
        "data": data,
        "data_seed": resolved["data_seed"],
        "model": resolved["model"],
        "trainer": trainer,
        "callbacks": callback_names(cfg),
        "test": resolved.get("test", True),
    }


def in_memory(data: dict[str, Any]) -> bool:
    """Whether the data config's class holds its splits as in-memory tensors
    (:class:`~lossbench.data.base.InMemoryDataModule`); found from its ``_target_``, nothing built."""
    from lossbench.data.base import InMemoryDataModule

    module, _, name = str(data.get("_target_")).rpartition(".")
    try:
        target = getattr(importlib.import_module(module), name, None)
    except (ImportError, ValueError):  # a missing target: the run's own checks name it
        return False
    return isinstance(target, type) and issubclass(target, InMemoryDataModule)


def packing_problems(cfgs: Sequence[DictConfig]) -> list[str]:
    """Why ``cfgs`` cannot be trained as one packed group (empty: they can)."""
    if not cfgs:
        return ["no configs to pack"]
    problems = []
    first = group_key(cfgs[0])
    for i, cfg in enumerate(cfgs[1:], start=1):
        key = group_key(cfg)
        differ = sorted(k for k in first if key[k] != first[k])
        if differ:
            problems.append(f"job {i} differs from job 0 in {', '.join(differ)}")
    model, trainer = first["model"], first["trainer"]
    for name in first["callbacks"]:
        if name not in PACKED_CALLBACKS:
            problems.append(f"callbacks.{name} is not packed (packed: {', '.join(PACKED_CALLBACKS)})")
    for cfg in cfgs:
        data_seed = (cfg.get("data") or {}).get("seed", cfg.get("seed"))
        if data_seed != cfg.get("seed"):  # a replica's batches and augmentation follow its seed
            problems.append(f"data.seed={data_seed} differs from seed={cfg.get('seed')}: not packed")
            break
    for cfg in cfgs:
        tie_break = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("tie_break", TIE_BREAK)
        if tie_break != TIE_BREAK:
            problems.append(f"callbacks.model_checkpoint.tie_break={tie_break} is not packed")
            break
    if not in_memory(first["data"]):
        problems.append(
            f"data {first['data'].get('_target_')} is not held in memory (packed training gathers each "
            "replica's batches from in-memory tensors)"
        )
    if model.get("_target_") not in PACKED_TARGETS:
        problems.append(
            f"model {model.get('_target_')} has no packed version (mlp, cnn, resnet32 and resnet18 have)"
        )
    if model.get("compile") or model.get("channels_last"):
        problems.append("model.compile and model.channels_last are not packed")
    if str(trainer.get("precision", "32-true")) in ("16", "16-mixed", "16-true"):
        problems.append("trainer.precision=16-mixed scales the loss, which per-replica clipping ignores")
    if trainer.get("accumulate_grad_batches", 1) != 1:
        problems.append("trainer.accumulate_grad_batches > 1 is not packed")
    devices = trainer.get("devices", 1)
    if not (devices == 1 or devices == [0] or devices == "1") or trainer.get("num_nodes", 1) != 1:
        problems.append("packed training runs on one device (trainer.devices=1)")
    return problems


def build_replicas(cfgs: Sequence[DictConfig]) -> tuple[BenchDataModule, list[Replica]]:
    """The group's data module and its replicas, each built as its unpacked run builds it."""
    problems = packing_problems(cfgs)
    if problems:
        raise ConfigError("these runs cannot be packed together: " + "; ".join(problems))
    dm: BenchDataModule | None = None
    data_is_random = True
    replicas = []
    for cfg in cfgs:
        check_run(cfg)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        if dm is None or data_is_random:
            before = random_states()
            dm = build_data(cfg)
            data_is_random = not same_states(before, random_states())
        cfg, loss, module = build_module(cfg, dm)
        clip_algorithm = cfg.trainer.get("gradient_clip_algorithm") or "norm"
        if clip_algorithm not in ("norm", "value"):
            raise ConfigError(f"trainer.gradient_clip_algorithm={clip_algorithm}: choose norm or value")
        replicas.append(
            Replica(
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
        )
    assert dm is not None
    return dm, replicas
