"""Training entry point: ``python train.py loss=focal`` and the ``lossbench-train`` console script.

Only Hydra and the config helpers load before the command line is parsed, so ``--help``, ``--cfg job`` and
shell completion answer without importing torch or Lightning; :func:`lossbench.run.run` does the work.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lossbench.checks import check_data_files, check_run
from lossbench.config import CONFIG_DIR, in_multirun
from lossbench.errors import LossbenchError, RunInterrupted, exit_status, one_line, root_error
from lossbench.failures import finished_here, record_failure, trained_loss
from lossbench.logs import print_config_tree, rank_zero
from lossbench.run_dir import RunDir
from lossbench.run_dir_claim import release_run_dir, run_dir_lock
from lossbench.signals import (
    as_interrupted,
    continue_command,
    exit_while_starting,
    raise_if_stopped,
    sigterm_raises,
    started,
    stopped_outside_training,
)
from lossbench.sweep import job_line, print_sweep_summary
from lossbench.sweep_stop import job_has_own_process, runs_jobs_elsewhere, stop_signal, sweep_dir_of
from lossbench.threads import choose_wait_policy

log = logging.getLogger("lossbench")


def starting_job(multirun: bool) -> str:
    """What a stop while this job starts keeps, and how to go on."""
    if not multirun:
        return "nothing was run"
    hydra = HydraConfig.get()
    again = continue_command(hydra.sweep.dir)
    return f"job {hydra.job.num} did not start, the jobs before it are kept. Continue with: {again}"


def stopped(err: RunInterrupted, cfg: DictConfig, multirun: bool) -> None:
    """End the run stopped by ``err`` with its one line (a stop outside fit and test says what is kept and
    how to go on), its record, the sweep's table in a sweep, and the signal's exit status.

    A sweep's job in a process of its own, stopped while its sweep is not stopping (a Slurm time limit or
    preemption, one worker killed), returns instead: its launcher gets it as an ended job, the sweep's other
    jobs go on, and the sweep's table lists it ``interrupted`` with the command that continues it."""
    if not str(err):
        sweep_dir = Path(HydraConfig.get().sweep.dir) if multirun else None
        last = RunDir(Path(cfg.paths.output_dir)).last_checkpoint
        message = stopped_outside_training(err.signal_name, last, sweep_dir)
        err = RunInterrupted(err.signal_name, message, requeued=err.requeued)
    # the other ranks of a DDP run stop too, but their command lines are Lightning's, not the user's
    if rank_zero():
        log.error("%s", err)
    finished = finished_here(cfg.paths.output_dir)  # a stop after the run's record was written keeps it
    if rank_zero() and not finished and not release_run_dir(Path(cfg.paths.output_dir)):
        record_failure(cfg, err, status="interrupted")  # metrics.json says so until resume=true finishes
    if err.requeued is not None:  # submitit requeued the job; its exit tells submitit to write no result
        log.error("submitit requeued this job: it continues from its last.ckpt when it starts again")
        raise SystemExit(err.requeued)
    hydra = HydraConfig.get() if multirun else None
    if hydra is not None and job_has_own_process(hydra.launcher) and stop_signal(sweep_dir_of(hydra)) is None:
        return  # this job's stop alone
    if hydra is not None and not runs_jobs_elsewhere(hydra.launcher):
        # the sweep stops here: its table, then the signal's exit status (where the jobs run in processes
        # of their own, the sweep's process prints it: lossbench.sweep_stop)
        print_sweep_summary(Path(hydra.sweep.dir), fail=False)
        log.error("the sweep stopped in job %s; its later jobs did not start", hydra.job.num)
    raise SystemExit(exit_status(err)) from None


def stopped_before_start(cfg: DictConfig, name: str) -> float:
    """A sweep job started once the sweep was stopping (its jobs in other processes): recorded
    ``interrupted`` before any work, so that continuing the sweep runs it (a finished job's record stays)."""
    stop = RunInterrupted(name, f"stopped by {name} before this job started: the sweep was stopping")
    if not RunDir(Path(cfg.paths.output_dir)).record.exists():
        record_failure(cfg, stop, status="interrupted")
    log.error("%s", stop)
    return float("nan")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: returns the best monitored validation metric, so sweepers can optimise it.

    In a multirun a failing job is recorded in its ``metrics.json`` (``status: failed``) and returns NaN, so
    the other jobs still run (Optuna marks the trial failed); the sweep's exit status is set at its end by
    :class:`lossbench.sweep.SweepSummary`. Exit statuses: :func:`lossbench.errors.exit_status`.
    """
    choose_wait_policy()  # PASSIVE OpenMP threads when other processes use the cores; before torch loads
    multirun = in_multirun()
    if (cfg.get("extras") or {}).get("print_config") and rank_zero():
        print_config_tree(cfg)
    try:
        # the run dir is held from here (a second process on it is refused): a sweep stopping its jobs
        # elsewhere waits while any job holds its dir (lossbench.sweep_stop)
        with run_dir_lock(Path(cfg.paths.output_dir)) if rank_zero() else contextlib.nullcontext():
            if multirun and (name := stop_signal(sweep_dir_of(HydraConfig.get()))):  # jobs are stopping
                return stopped_before_start(cfg, name)
            exit_while_starting("lossbench", starting_job(multirun))  # until started(): one line, at once
            try:
                check_run(cfg)  # every config problem at once, before torch and Lightning load
                check_data_files(cfg)  # and every problem of a table
                from lossbench.run import run  # torch and Lightning load here
            finally:
                started()
            with sigterm_raises():  # a stop before fit, or after it, is one line too
                summary = run(cfg)
                raise_if_stopped()  # a stop whose exception Python swallowed (in a GC callback) stops here
    except (Exception, KeyboardInterrupt) as err:
        if (stop := as_interrupted(err)) is not None:  # a signal, or an error it caused in a library
            stopped(stop, cfg, multirun)  # exits, unless this job alone of its sweep was stopped
            return float("nan")
        cause = root_error(err)
        if not multirun:
            # a run that started (its Trainer built) keeps the record of its failure; one refused before,
            # no record (a config error) and no run dir of its own
            if trained_loss(cfg.paths.output_dir) is not None:
                if rank_zero():
                    record_failure(cfg, err)
            elif isinstance(cause, LossbenchError):
                release_run_dir(Path(cfg.paths.output_dir))
            if isinstance(cause, LossbenchError):
                log.error("%s", one_line(cause))
                raise SystemExit(exit_status(err)) from None
            raise
        if isinstance(cause, LossbenchError):
            log.error("job failed: %s", one_line(cause))
        else:
            log.exception("job failed: %s", one_line(err))
        record_failure(cfg, err)
        return float("nan")
    best = summary["monitor"]["best"]
    if rank_zero() and multirun:
        log.info("%s", job_line(summary))
    elif rank_zero():
        tested = " ".join(f"{k}={v:.4f}" for k, v in summary["test"].items())
        shown = "n/a (no validation ran)" if best is None else f"{best:.4f}"
        log.info(
            "run dir %s | best %s=%s | %s", cfg.paths.output_dir, summary["monitor"]["metric"], shown, tested
        )
    return best


def cli() -> None:
    """``python train.py`` and ``lossbench-train``: :func:`main`; a stop while Hydra composes the config is
    one line too."""
    exit_while_starting("lossbench")
    main()


if __name__ == "__main__":
    cli()
