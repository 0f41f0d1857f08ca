"""A packed replica's run dir, written as its own run writes it: ``metrics.json``, ``csv/metrics.csv`` and
``predictions.npz`` (see :mod:`lossbench.run_dir`), and its own W&B run when its loggers include W&B
(:mod:`lossbench.packed.wandb_runs`); its checkpoints are written while it trains
(:mod:`lossbench.packed.checkpoints`).

:func:`write_replica_run` runs inside the replica's Hydra job (the packed launcher calls it through
``hydra.core.utils.run_job``), so Hydra has already written ``.hydra/`` and the job's log file, and the
chosen options (``loss``, ``data``, ``model``) and the overrides are the job's own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lossbench.errors import NonFiniteLossError, RunInterrupted, one_line
from lossbench.failures import record_failure
from lossbench.integrity import logs_csv
from lossbench.interrupt import stop_message
from lossbench.loggers import wandb_config
from lossbench.nonfinite import with_last_checkpoint
from lossbench.overrides import run_overrides
from lossbench.packed.batches import PackedDataModule
from lossbench.packed.history import logged_rows, restore_csv, write_csv
from lossbench.packed.module import OK, PackedModule
from lossbench.packed.wandb_runs import log_replica_run, replica_run_id
from lossbench.record import RunRecord
from lossbench.run import record_fields, warn_if_early_best, write_run_files
from lossbench.run_dir import RunDir
from lossbench.signals import as_interrupted
from lossbench.sweep import job_line
from lossbench.task import spec

log = logging.getLogger("lossbench")


def steps_per_epoch(data: PackedDataModule) -> int:
    """Optimizer steps in one full training epoch."""
    return math.ceil(len(data.data.splits["train"][1]) / data.data.batch_size)


def write_replica_run(
    cfg: DictConfig,
    module: PackedModule,
    data: PackedDataModule,
    k: int,
    result: dict[str, Any],
    wall_s: float,
    sweep_size: int | None = None,
) -> float:
    """The Hydra task of replica ``k``'s job: :func:`write_replica_files` with the job's overrides, then the
    job's log line; returns its best monitored value (NaN when it failed), as the ordinary task function
    returns it. ``sweep_size``: the sweep's jobs (read from the sweep dir when not given)."""
    summary = write_replica_files(cfg, module, data, k, result, wall_s, run_overrides())
    if summary is None:
        return float("nan")
    log.info("%s", job_line(summary, sweep_size))
    return float(summary["monitor"]["best"])


def write_replica_files(
    cfg: DictConfig,
    module: PackedModule,
    data: PackedDataModule,
    k: int,
    result: dict[str, Any],
    wall_s: float,
    overrides: list[str],
) -> dict[str, Any] | None:
    """Write replica ``k``'s run dir (``cfg``: its config) from its ``result``
    (:func:`~lossbench.packed.results.replica_results`) and log it to its own W&B run; return its record
    (``None``: it failed, recorded as such). ``wall_s``: the packed group's wall time; ``overrides``: what
    its record names as its overrides."""
    replica = module.replicas[k]
    run_dir = RunDir(cfg.paths.output_dir)
    resolved = OmegaConf.to_container(replica.cfg, resolve=True)
    logged = wandb_config(resolved, overrides)  # its W&B config and its CSV hyper-parameters
    rows = logged_rows(result, steps_per_epoch(data))
    if result["status"] != OK:  # its curves up to the bad step, and its W&B run, as its run leaves them
        last = run_dir.last_checkpoint if run_dir.last_checkpoint.is_file() else None
        err = NonFiniteLossError(with_last_checkpoint(result.get("error") or "the replica stopped", last))
        log.error("job failed (%s): %s: %s", " ".join(overrides), type(err).__name__, err)
        record_failure(cfg, err, overrides=overrides)  # the job's config, as its run records it
        if logs_csv(replica.cfg):
            write_csv(run_dir, rows, logged)
        run_id = replica_run_id(run_dir, continued=module.resumed is not None)
        log_replica_run(replica.cfg, run_id, logged, rows, None, err)
        return None
    dm = data.data
    fields = record_fields(replica.cfg, replica.loss, dm, resolved, overrides)
    record = RunRecord(OK, **fields, test=dict(result["test"]))
    best_path = module.checkpoints.best_path(k) if module.checkpoints is not None else ""
    record.monitor = {**result["monitor"], "best_checkpoint": best_path}
    record.monitor.pop("best_epoch", None)
    record.val, record.epochs = result["val"], result["epochs"]
    record.wall_s = round(wall_s / module.num_replicas, 3)  # its share of the group's time
    record.timings = {"packed_group": round(wall_s, 3), "packed_replicas": float(module.num_replicas)}
    if logs_csv(replica.cfg):
        write_csv(run_dir, rows, logged)
    arrays = replica_predictions(module, k)
    if arrays:
        np.savez_compressed(run_dir.predictions, **arrays)
    warn_if_early_best(record)
    write_run_files(record, run_dir)
    summary = record.to_dict()
    run_id = replica_run_id(run_dir, continued=module.resumed is not None)
    log_replica_run(replica.cfg, run_id, logged, rows, summary)
    return summary


def recorded_stop(err: RunInterrupted) -> Callable[[DictConfig], float]:
    """A job's task function that records the stop ``err`` (``metrics.json`` with ``status:
    interrupted``, its ``.hydra/`` written by the job) and returns NaN; a stop without a message says, as
    an ordinary run's does, the epoch it stopped and what the job's ``last.ckpt`` holds, if it has one. A
    replica stopped after its first ``last.ckpt`` gets the CSV rows of the epochs that checkpoint holds, as
    a stopped run has them."""

    def task(cfg: DictConfig) -> float:
        run_dir = RunDir(Path(cfg.paths.output_dir))
        sweep_dir = Path(HydraConfig.get().sweep.dir)
        said = err if str(err) else stopped_replica(err, cfg, run_dir, sweep_dir)
        record_failure(cfg, said, status="interrupted")
        if logs_csv(cfg) and run_dir.last_checkpoint.is_file() and not run_dir.csv.is_file():
            from lossbench.resume import read_checkpoint

            try:
                restore_csv(run_dir, read_checkpoint(run_dir.last_checkpoint))
            except Exception as error:  # the stop is recorded; continuing the sweep writes the rows
                log.warning("%s: its CSV rows could not be written: %s", run_dir.path, one_line(error))
        return float("nan")

    return task


def stopped_replica(err: RunInterrupted, cfg: DictConfig, run_dir: RunDir, sweep_dir: Path) -> RunInterrupted:
    """``err`` for the replica of ``cfg`` in ``run_dir``, a job of the sweep in ``sweep_dir``: the epoch
    after the one its ``last.ckpt`` holds was stopped (the group's replicas train their epochs together),
    or its first without one."""
    max_epochs = cfg.trainer.get("max_epochs")
    message = stop_message(err.signal_name, run_dir.last_checkpoint, 0, max_epochs, sweep_dir)
    return RunInterrupted(err.signal_name, message, requeued=err.requeued)


def guarded(
    write: Callable[[DictConfig], float], stops: list[RunInterrupted]
) -> Callable[[DictConfig], float]:
    """``write`` as a job's task function: an error writing the run dir is recorded as the job's failure
    (``metrics.json`` with ``status: failed``) and returns NaN, as the ordinary task does in a sweep. A stop
    (SIGTERM, Ctrl-C) joins ``stops`` and records nothing: the job's ``last.ckpt`` holds its last epoch,
    and continuing the sweep writes its run dir."""

    def task(cfg: DictConfig) -> float:
        try:
            return write(cfg)
        except (Exception, KeyboardInterrupt) as err:
            if (stop := as_interrupted(err)) is not None:
                stops.append(stop)
                return float("nan")
            log.exception("job failed: %s", one_line(err))
            record_failure(cfg, err)
            return float("nan")

    return task


def replica_predictions(module: PackedModule, k: int) -> dict[str, np.ndarray]:
    """Replica ``k``'s test predictions as its run writes them to ``predictions.npz`` (``targets`` and the
    task's arrays from its loss: ``probs`` and ``preds``, or ``outputs`` and ``point``); empty before a
    test."""
    batches = module.test_batches[k]
    if not batches:
        return {}
    outputs = torch.cat([o for o, _ in batches])
    arrays = {"targets": torch.cat([t for _, t in batches]).cpu().numpy()}
    for name, value in spec(module.task).prediction_arrays(module.losses[k], outputs).items():
        arrays[name] = value.cpu().numpy()
    return arrays
