"""Train, select and test one packed group: K runs' configs in, each run's outcome out."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lossbench.build import data_info_of
from lossbench.interrupt import stopped_by_signal
from lossbench.packed.batches import PackedDataModule
from lossbench.packed.checkpoints import PackedCheckpoints
from lossbench.packed.module import PackedModule
from lossbench.packed.replicas import build_replicas
from lossbench.packed.results import replica_results
from lossbench.threads import others_busy_cores


def build_packed(
    cfgs: Sequence[DictConfig], hydra_configs: Sequence[DictConfig] | None = None
) -> tuple[PackedModule, PackedDataModule]:
    """The packed module and data of the runs ``cfgs`` (composed run configs, see
    :func:`lossbench.config.compose_run`), each replica built as its run builds its model (in its job's
    Hydra config when ``hydra_configs`` gives them: :func:`~lossbench.packed.replicas.build_replicas`)."""
    dm, replicas = build_replicas(cfgs, hydra_configs)
    module = PackedModule(replicas, dm.task, dm.num_classes)
    return module, PackedDataModule(dm, [r.seed for r in replicas])


def packed_trainer(cfg: DictConfig, **kwargs: Any) -> Any:
    """The group's Trainer: its runs' ``trainer`` config, without what each replica does for itself
    (gradient clipping, checkpoints: :class:`~lossbench.packed.checkpoints.PackedCheckpoints`);
    ``kwargs`` override."""
    options: dict[str, Any] = {
        "gradient_clip_val": None,
        "gradient_clip_algorithm": None,
        "enable_checkpointing": False,
        "logger": False,
        "callbacks": [],
        "enable_progress_bar": False,
    }
    options.update(kwargs)
    return instantiate(cfg.trainer, **options)


def fit_packed(cfgs: Sequence[DictConfig], **trainer_kwargs: Any) -> list[dict[str, Any]]:
    """Train the runs ``cfgs`` packed, test each replica's best epoch (unless ``test=false``) and return
    :func:`~lossbench.packed.results.replica_results` (one dict per run, in order); ``trainer_kwargs``
    override the Trainer's."""
    module, data = build_packed(cfgs)
    return train_packed(module, data, cfgs[0], **trainer_kwargs)


@dataclass
class TrainedGroup:
    """A packed group after :func:`train_group`: its module and data, each replica's result, the wall time."""

    module: PackedModule
    data: PackedDataModule
    results: list[dict[str, Any]]
    wall_s: float


def train_group(
    cfgs: Sequence[DictConfig],
    overrides: Sequence[Sequence[str]],
    start: Callable[[PackedModule, PackedCheckpoints], AbstractContextManager[str | None]] | None = None,
    hydra_configs: Sequence[DictConfig] | None = None,
) -> TrainedGroup:
    """Build the runs ``cfgs`` as one packed group and train it on the cores other processes leave free,
    each replica writing its run's checkpoints (``overrides``: per run, what they name as its overrides);
    ``start(module, checkpoints)`` gives the group's checkpoint to continue from (None: from the start);
    ``hydra_configs``: each run's job config, as :func:`build_packed` takes them."""
    began = time.perf_counter()
    module, data = build_packed(cfgs, hydra_configs)
    checkpoints = PackedCheckpoints([r.cfg for r in module.replicas], overrides, data_info_of(data.data))
    trainer = packed_trainer(cfgs[0], plugins=[checkpoints.capture])
    # in the Trainer's dtype before a continued group's weights load (64-true: not rounded to float32)
    trainer.precision_plugin.convert_module(module)
    with free_core_threads(), (start or no_checkpoint)(module, checkpoints) as ckpt_path:
        results = train_packed(module, data, cfgs[0], checkpoints, ckpt_path, trainer=trainer)
    return TrainedGroup(module, data, results, time.perf_counter() - began)


@contextmanager
def no_checkpoint(module: PackedModule, checkpoints: PackedCheckpoints) -> Iterator[None]:
    """A group that starts from the beginning: no checkpoint to continue from."""
    yield None


def train_packed(
    module: PackedModule,
    data: PackedDataModule,
    cfg: DictConfig,
    checkpoints: PackedCheckpoints | None = None,
    ckpt_path: str | None = None,
    *,
    trainer: Any = None,
    **trainer_kwargs: Any,
) -> list[dict[str, Any]]:
    """Fit ``module`` on ``data`` with the Trainer of ``cfg`` (any run of the group), load each replica's
    best epoch, test it (unless ``test=false``) and return :func:`~lossbench.packed.results.replica_results`.

    ``checkpoints``: writes each replica's best and last checkpoints; ``ckpt_path``: the group's
    checkpoint to continue from (:func:`~lossbench.packed.checkpoints.group_checkpoint`, the replicas
    resumed already); ``trainer``: the group's Trainer, built already (else built here, ``trainer_kwargs``
    overriding its options)."""
    if checkpoints is not None:
        trainer_kwargs.setdefault("plugins", [checkpoints.capture])
    trainer = trainer or packed_trainer(cfg, **trainer_kwargs)
    module.checkpoints = checkpoints
    try:
        with stopped_by_signal(trainer):  # SIGTERM and Ctrl-C: RunInterrupted, as for an ordinary run
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    finally:
        if checkpoints is not None:
            checkpoints.close()
    module.restore_best()
    if bool(cfg.get("test", True)) and module.alive():
        calibrate(module, data, trainer.precision_plugin.val_step_context())
        trainer.test(module, datamodule=data, verbose=False)
    return replica_results(module)


def calibrate(
    module: PackedModule, data: PackedDataModule, precision: AbstractContextManager[Any] | None = None
) -> None:
    """Fit each training replica's recalibration on the validation outputs of the weights it is tested
    with, as its run fits its own (:func:`lossbench.run.calibrate`): one pass over the validation batches,
    in the Trainer's validation ``precision`` context (bf16 autocast, float64), as its run's pass runs."""
    alive = module.alive()
    if not alive or not module.metrics[alive[0]].recalibration.applies:
        return
    outputs: dict[int, list[torch.Tensor]] = {k: [] for k in alive}
    targets = []
    module.to(data.device_split("val")[0].device)  # Lightning's teardown after fit leaves it on the CPU
    module.eval()
    with torch.no_grad(), precision or nullcontext():
        for x, y in data.val_dataloader():
            packed = module.model(x, shared=True)
            for k in alive:
                outputs[k].append(module.model.outputs(k, packed).float())
            targets.append(y)
    for k in alive:
        module.metrics[k].recalibration.fit(module.losses[k], torch.cat(outputs[k]), torch.cat(targets))


@contextmanager
def free_core_threads() -> Iterator[int]:
    """torch's intra-op threads limited to the cores other processes leave free (at least one) while in
    the block; yields the number used.

    A packed model's operations are large enough for torch to split each over its threads, and every
    operation then waits for its slowest thread: when other processes keep a core busy, a thread on it is
    descheduled and each step takes several times as long (16 digits MLP replicas on 2 cores with one
    busy: ~25 ms a step on one thread, ~50 ms on two waiting passively, ~280 ms on two spinning). The
    results do not depend on the number of threads: each replica's products and updates are computed
    whole by one thread.
    """
    before = torch.get_num_threads()
    busy = others_busy_cores() or 0.0
    threads = max(1, min(before, math.floor((os.cpu_count() or 1) - busy + 0.5)))
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
