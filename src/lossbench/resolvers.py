"""OmegaConf resolvers used by the configs (registered when ``lossbench`` is imported).

* ``${lossbench.wandb_group:${task_name}}``: the W&B group. A single run: ``<task_name>``; every job of a
  Hydra multirun: ``<task_name>_<sweep dir, last two parts>`` (e.g. ``train_2026-11-25_06-30-00``);
  a run started by ``wandb agent``: ``<task_name>_wandb-sweep-<sweep id>``.
* ``${lossbench.loss_variant:${loss_name},${hydra:overrides.task}}``: the W&B job type and name, the loss
  and its ``loss.*`` overrides (``focal loss.gamma=1``).
* ``${lossbench_run_dir:outputs/<task_name>,<stamp>}``: ``hydra.run.dir``; with ``resume=true`` the run to
  continue (:func:`lossbench.run_dir_claim.run_dir_resolver`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from lossbench.overrides import override_key
from lossbench.run_dir_claim import run_dir_resolver


def wandb_group(task_name: str) -> str:
    sweep_id = os.environ.get("WANDB_SWEEP_ID")
    if sweep_id:
        return f"{task_name}_wandb-sweep-{sweep_id}"
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return f"{task_name}_" + "_".join(Path(hc.sweep.dir).parts[-2:])
    return str(task_name)


def loss_variant(loss_name: str, overrides: Any, limit: int | None = None) -> str:
    """``<loss> <its loss.* overrides>`` (``focal loss.gamma=1``), as ``lossbench compare`` labels a variant:
    the W&B job type and name of runs that differ in a loss hyper-parameter differ too (grouped by job
    type, W&B would average ``gamma=1`` and ``gamma=3`` as seeds of one loss). ``overrides``: the run's
    (``${hydra:overrides.task}``, so a config composed beside others keeps its own); ``limit``: cut to that
    many characters (W&B takes job types of up to 64)."""
    options = sorted(str(o).lstrip("+") for o in overrides or [] if override_key(str(o)).startswith("loss."))
    text = " ".join([str(loss_name), *options])
    return text[:limit] if limit else text


def job_gpu() -> list[int]:
    """``[job number mod visible GPUs]``: one GPU per job of a parallel sweep (``trainer.devices``)."""
    import torch

    num = OmegaConf.select(HydraConfig.get(), "job.num", default=0) if HydraConfig.initialized() else 0
    return [int(num or 0) % max(1, torch.cuda.device_count())]


def register() -> None:
    OmegaConf.register_new_resolver("lossbench.wandb_group", wandb_group, replace=True)
    OmegaConf.register_new_resolver("lossbench_run_dir", run_dir_resolver, replace=True)
    OmegaConf.register_new_resolver("lossbench.job_gpu", job_gpu, replace=True)
    OmegaConf.register_new_resolver("lossbench.loss_variant", loss_variant, replace=True)
