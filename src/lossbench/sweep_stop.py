"""A sweep whose jobs run in processes of their own (``hydra/launcher=parallel``: joblib's workers;
``submitit_local``: one process per job), stopped as a sweep of jobs run one after another stops.

A signal to the sweep's own process (SIGTERM, or SIGINT: Ctrl-C) would otherwise end it at once and leave
its workers training with no one to report them, or starting the jobs still queued.
:func:`stop_workers_on_signal` makes the sweep's process, on either signal:

1. mark the sweep stopped (:data:`STOP_MARK` in the sweep dir): a job that starts after this is recorded
   ``interrupted`` before any work (:func:`stop_signal`) and runs when the sweep is continued;
2. pass SIGTERM on to each process it started, once: each job training stops as a run stops, its last
   checkpoint kept and its record ``interrupted``, and its process ends (:func:`exit_worker`). After
   SIGINT, which a terminal sends to the workers too, only the processes still running after
   :data:`GRACE_S` are sent it;
3. wait for them to end (any left after :data:`TIMEOUT_S` are killed), print the sweep's table and the
   command that continues it, and exit with the signal's status (143, 130).

A second signal while it waits kills the sweep's processes at once (their last checkpoints stay).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from lossbench.errors import SIGNAL_EXIT
from lossbench.signals import continue_command

#: the file in the sweep dir that says the sweep was stopped (removed when it is continued)
STOP_MARK = ".stopping"
#: the launchers whose jobs run in processes of their own (by their ``_target_``'s class name)
ELSEWHERE = ("JoblibLauncher", "LocalLauncher")
#: seconds the workers have to stop on their own after SIGINT (a terminal's Ctrl-C reaches them too)
GRACE_S = 10.0
#: seconds the workers have to stop after SIGTERM before they are killed
TIMEOUT_S = 300.0

log = logging.getLogger("lossbench")


def runs_jobs_elsewhere(launcher_target: str) -> bool:
    """Whether a launcher (its ``_target_``) runs each job in a process other than the sweep's."""
    return str(launcher_target).endswith(ELSEWHERE)


def stop_signal(sweep_dir: Path | str) -> str | None:
    """The signal that stopped the sweep in ``sweep_dir`` while its jobs ran elsewhere (None: none did)."""
    try:
        return (Path(sweep_dir) / STOP_MARK).read_text().strip() or "SIGTERM"
    except FileNotFoundError:
        return None


def exit_worker(status: int) -> None:
    """End a job's process once its stopped job is recorded: a joblib worker would otherwise take the next
    job, and the sweep's process waits for its workers to end."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)


def stop_workers_on_signal(sweep_dir: Path) -> None:
    """In the sweep's process, before its jobs start: SIGTERM and SIGINT stop its workers' jobs, then the
    sweep (see the module's docstring). A continued sweep's stop mark is removed first."""
    (sweep_dir / STOP_MARK).unlink(missing_ok=True)
    stopping: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if stopping:  # a second signal: no more waiting
            kill_workers()
            os._exit(SIGNAL_EXIT[stopping[0]])
        stopping.append(name)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / STOP_MARK).write_text(name)
        log.error("stopped by %s: stopping the jobs that are running (a second signal kills them)", name)
        stop_workers(GRACE_S if signum == signal.SIGINT else 0.0, TIMEOUT_S)
        from lossbench.sweep import print_sweep_summary

        print_sweep_summary(sweep_dir, fail=False)
        log.error(
            "stopped by %s: the jobs that were training kept their last checkpoints and the later jobs did "
            "not start. Continue with: %s",
            name,
            continue_command(sweep_dir),
        )
        raise SystemExit(SIGNAL_EXIT[name])  # through the launcher, whose exit handlers then clean up

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job's ignored SIGINT stays so
            signal.signal(signum, handler)


def stop_workers(grace_s: float, timeout_s: float) -> None:
    """Send SIGTERM to each process this one started (once, after ``grace_s`` seconds if it still runs),
    and wait for every process under this one to end; kill those left after ``timeout_s`` more seconds.
    Processes that ignore SIGTERM (joblib's resource tracker) end with this process and are not waited
    for."""
    import psutil

    me = psutil.Process()
    signalled: set[int] = set()
    start = time.monotonic()
    while any(running(p) and not ignores_sigterm(p.pid) for p in me.children(recursive=True)):
        now = time.monotonic() - start
        if now >= grace_s + timeout_s:
            kill_workers()
            return
        if now >= grace_s:
            for child in me.children(recursive=False):  # a submitit job passes it on to its task
                if child.pid not in signalled:
                    signalled.add(child.pid)
                    with contextlib.suppress(psutil.Error):
                        child.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # not psutil.wait_procs: it would reap the launcher's own children


def kill_workers() -> None:
    """Kill every process under this one."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()


def running(process: Any) -> bool:
    """Whether a psutil process is still running (not ended, not a zombie waiting to be reaped)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        return process.status() != psutil.STATUS_ZOMBIE
    return False


def ignores_sigterm(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGTERM (Linux's ``/proc/<pid>/status``; False where unknown)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False
