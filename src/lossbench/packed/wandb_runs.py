"""A packed replica's own W&B run, in its sweep's group, as its unpacked run would log it.

An unpacked run's ``WandbLogger`` gets, per epoch, ``train/loss`` and the ``val/`` metrics at the epoch's last
optimizer step, then the ``test/`` metrics, with the run's resolved config and the summary of
:func:`lossbench.loggers.log_wandb_summary`. A packed group trains without per-replica loggers (one
Trainer serves all replicas), so each replica's history is logged here once its run dir is written: the
same keys at the same steps, through the same ``WandbLogger`` (``logger.wandb`` of the replica's config:
its project, group, job type, tags and mode).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lossbench.loggers import build_loggers, finish_wandb, log_wandb_summary
from lossbench.resume import wandb_run_id
from lossbench.run_dir import RunDir


def replica_run_id(run_dir: RunDir, continued: bool) -> str:
    """The W&B run id of a replica writing ``run_dir``, stored there as its run stores it
    (``wandb_run_id``, also without a W&B logger): the one stored already when it continued from its
    checkpoint, else a new one."""
    return wandb_run_id(run_dir.path, run_dir.last_checkpoint if continued else None)


def log_replica_run(
    cfg: DictConfig,
    run_id: str,
    config: dict[str, Any],
    rows: list[tuple[int, dict[str, Any]]],
    summary: dict[str, Any] | None,
) -> bool:
    """Log a replica's ``rows`` (:func:`lossbench.packed.history.logged_rows`: each step and its metrics)
    to its own W&B run ``run_id`` when its config has a ``logger.wandb``; ``summary``: its run record
    (``None``: it failed, and its run's summary keeps the last logged values).
    Whether it logged."""
    node = (cfg.get("logger") or {}).get("wandb")
    if node is None:
        return False
    # the node stays in its config, so its interpolations (${tags}, the group) resolve
    (logger,) = build_loggers({"wandb": node}, config, run_id)
    try:
        for step, metrics in rows:
            logger.log_metrics(metrics, step=step)
        if summary is not None:
            log_wandb_summary(summary)
    finally:
        finish_wandb()
    return True
