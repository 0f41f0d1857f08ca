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

from lossbench.loggers import build_loggers, finish_wandb, init_wandb_run, log_wandb_summary
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
    failure: BaseException | None = None,
) -> bool:
    """Log a replica's ``rows`` (:func:`lossbench.packed.history.logged_rows`: each step and its metrics)
    to its own W&B run ``run_id`` when its config has a ``logger.wandb``; ``summary``: its run record, or
    ``None`` when it failed with ``failure`` (its W&B run then ends failed, as its run's does, also when it
    logged no row). Whether it logged."""
    node = (cfg.get("logger") or {}).get("wandb")
    if node is None:
        return False
    # the node stays in its config, so its interpolations (${tags}, the group) resolve
    loggers = build_loggers({"wandb": node}, config, run_id, replay=False)  # its rows are logged below
    try:
        init_wandb_run(loggers)  # as its run starts it: a replica that failed before logging has one too
        for step, metrics in rows:
            loggers[0].log_metrics(metrics, step=step)
        if summary is not None:
            log_wandb_summary(summary)
    except BaseException as err:  # a stop while it logs: its W&B run ends interrupted, not finished
        finish_wandb(err)
        raise
    finish_wandb(failure)
    return True
