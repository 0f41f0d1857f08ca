"""A sweep whose jobs run in processes of their own (``hydra/launcher=parallel``: joblib's workers;
``submitit_local``: one process per job), stopped as a sweep of jobs run one after another stops.

A signal to the sweep's own process (SIGTERM, or SIGINT: Ctrl-C) would otherwise end it at once and leave
its workers training with no one to report them, or starting the jobs still queued. Signalling the workers
is no way out: a joblib worker that ends breaks its pool, and the pool kills the others mid-record.
Instead, on either signal, :func:`stop_workers_on_signal` makes the sweep's process:

1. mark the sweep stopped (:data:`STOP_MARK` in the sweep dir). Each job training sees the mark at its
   next batch (:class:`lossbench.sweep_stop_watch.StopWithTheSweep`) and stops as a run stopped by SIGTERM
   does: its last checkpoint kept, its record ``interrupted``. A job that starts after the mark is recorded
   ``interrupted`` before any work (:func:`stop_signal`); each runs when the sweep is continued;
2. wait until no job has held its run dir for :data:`SETTLE_S` seconds (the lock a job takes at the start
   of its task, :func:`lossbench.run_dir_claim.run_dir_lock`), or :data:`TIMEOUT_S` has passed;
3. print the sweep's table and the command that continues it, and exit with the signal's status (143,
   130), through the launcher, which then ends its workers.

A second signal while it waits ends the sweep's process at once (the jobs' last checkpoints stay). A signal
once every job has ended stops nothing: the sweep ends as it would have, with its table. Where Python
swallows the handler's ``SystemExit`` (the signal arrived inside a garbage-collection or weakref callback),
it is not printed as an ignored error: :func:`sweep_ended` raises it again when the launcher returns.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lossbench.errors import SIGNAL_EXIT
from lossbench.run_dir_claim import run_dir_held
from lossbench.signals import continue_command
from lossbench.slurm import is_slurm

#: the file in the sweep dir that says the sweep is stopping (removed when a sweep starts or continues)
STOP_MARK = ".stopping"
#: the launchers whose jobs run in processes of their own (by their ``_target_``'s class name)
ELSEWHERE = ("JoblibLauncher", "LocalLauncher")
#: seconds the jobs have to stop before the sweep's process ends without them
TIMEOUT_S = 300.0
#: seconds without a held run dir after which the jobs count as stopped: their records are written, and a
#: job its launcher was starting (a new process importing the job's code) has taken its dir by then
SETTLE_S = 5.0

log = logging.getLogger("lossbench")
#: the exit the stop raised, kept until the sweep ends (Python may have swallowed it) and the hook it replaced
_RAISED: list[SystemExit] = []
_PREVIOUS_HOOK: list[Any] = []


def runs_jobs_elsewhere(launcher: Any) -> bool:
    """Whether a launcher config (``hydra.launcher``) runs each job in a process other than the sweep's
    (joblib with one job at a time runs them in the sweep's own process)."""
    target = str((launcher or {}).get("_target_", ""))
    if not target.endswith(ELSEWHERE):
        return False
    if target.endswith("JoblibLauncher"):
        from joblib import effective_n_jobs

        return effective_n_jobs(launcher.get("n_jobs") or -1) != 1
    return True


def job_has_own_process(launcher: Any) -> bool:
    """Whether each job runs in a process of its own whose result the sweep's process waits for: the
    launchers of :func:`runs_jobs_elsewhere`, and submitit's Slurm launcher (its jobs run on the cluster)."""
    return runs_jobs_elsewhere(launcher) or is_slurm(launcher)


def sweep_dir_of(hydra: Any) -> Path:
    """A sweep's dir as an absolute path (a job with ``hydra.job.chdir=true`` runs in its own dir)."""
    path = Path(str(hydra.sweep.dir))
    return path if path.is_absolute() else Path(str(hydra.runtime.cwd)) / path


def stop_signal(sweep_dir: Path | str) -> str | None:
    """The signal that stopped the sweep in ``sweep_dir`` while its jobs ran elsewhere (None: none did)."""
    try:
        return (Path(sweep_dir) / STOP_MARK).read_text().strip() or "SIGTERM"
    except FileNotFoundError:
        return None


def clear_stop(sweep_dir: Path) -> None:
    """A sweep starts or continues: an earlier stop's mark goes (whatever launcher runs it now)."""
    (sweep_dir / STOP_MARK).unlink(missing_ok=True)


def stop_workers_on_signal(sweep_dir: Path) -> None:
    """In the sweep's process, before its jobs start: SIGTERM and SIGINT stop its jobs, then the sweep
    (see the module's docstring); :func:`sweep_ended` undoes it."""
    stopping: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if stopping:  # a second signal: no more waiting
            os._exit(SIGNAL_EXIT[stopping[0]])
        stopping.append(name)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / STOP_MARK).write_text(name)
        log.error("stopped by %s: the jobs that are training stop after their batch (a second signal "
                  "ends the sweep at once)", name)  # fmt: skip
        wait_for_jobs(sweep_dir, TIMEOUT_S)
        from lossbench.record import FAILED, OK
        from lossbench.sweep import all_job_dirs, print_sweep_summary, read_job

        if all(read_job(job)["status"] in (OK, FAILED) for job in all_job_dirs(sweep_dir)):
            log.info("every job had ended: the sweep ends as it would have")  # no stop to continue
            clear_stop(sweep_dir)
            sweep_ended()
            return
        print_sweep_summary(sweep_dir, fail=False)
        log.error(
            "stopped by %s: the jobs that were training kept their last checkpoints and the later jobs did "
            "not start. Continue with: %s",
            name,
            continue_command(sweep_dir),
        )
        _RAISED.append(SystemExit(SIGNAL_EXIT[name]))
        raise _RAISED[-1]  # through the launcher, which ends its workers

    def unraisable(info: Any) -> None:
        if not any(info.exc_value is raised for raised in _RAISED):
            _PREVIOUS_HOOK[0](info)

    _RAISED.clear()
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job's ignored SIGINT stays so
            signal.signal(signum, handler)
    if not _PREVIOUS_HOOK:
        _PREVIOUS_HOOK.append(sys.unraisablehook)
        sys.unraisablehook = unraisable  # a swallowed stop is raised again by sweep_ended, not printed


def say_jobs_go_on_on_signal(sweep_dir: Path) -> None:
    """In the process that submitted a sweep's jobs to Slurm, which waits for them: SIGTERM and SIGINT end it
    with one line saying that the jobs go on on the cluster and how to follow, report and continue them
    (signalling the submitter neither reaches nor cancels them)."""

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        log.error(
            "stopped by %s: the jobs submitted to Slurm go on running on the cluster (`squeue --me` lists "
            "them, `scancel` stops them); `lossbench compare %s` reports them once they end, and %s "
            "continues any that did not finish",
            name,
            sweep_dir,
            continue_command(sweep_dir),
        )
        os._exit(SIGNAL_EXIT[name])  # as a stop while starting: submitit's wait holds nothing to keep

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)


def sweep_ended() -> None:
    """Every job has ended: a signal no longer stops them (the sweep's table is being written). A stop
    whose ``SystemExit`` Python swallowed is raised now (its table and continue line are printed)."""
    for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, default)
    if _PREVIOUS_HOOK:
        sys.unraisablehook = _PREVIOUS_HOOK.pop()
    if _RAISED:
        raise _RAISED.pop()


def wait_for_jobs(sweep_dir: Path, timeout_s: float) -> None:
    """Wait until no job of ``sweep_dir`` has held its run dir for :data:`SETTLE_S` seconds, or
    ``timeout_s`` has passed."""
    start = free_since = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if any(run_dir_held(job) for job in sweep_dir.iterdir() if job.is_dir() and job.name.isdigit()):
            free_since = time.monotonic()
        elif time.monotonic() - free_since >= SETTLE_S:
            return
        time.sleep(0.1)
    log.error("the jobs did not stop within %.0f s: the sweep ends without them", timeout_s)
