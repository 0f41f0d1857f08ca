"""Stops outside Lightning's fit and test: one line and the signal's exit status at any moment.

While an entry point starts (imports, config and data checks), builds the data, or goes from one run to the
next, Lightning's signal handling is not in place: SIGTERM would end the process silently and Ctrl-C with a
long ``KeyboardInterrupt`` traceback.

* While starting (:func:`exit_while_starting` until :func:`started`), either signal ends the process at
  once: one line, the run dirs this process claimed removed, the signal's exit status. An exception raised
  in the middle of importing torch or Lightning would leave them half-initialised (and can abort Python).
* Afterwards :func:`sigterm_raises` makes SIGTERM raise :class:`RunInterrupted` wherever Lightning's own
  handler is not in place, :func:`as_interrupted` turns Ctrl-C's ``KeyboardInterrupt`` into one, and
  :func:`stopped_outside_training` says what is kept and how to go on.

This module loads neither torch nor Lightning.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lossbench.errors import SIGNAL_EXIT, RunInterrupted, cause_of

#: the handlers in place before :func:`exit_while_starting`, put back by :func:`started`
_BEFORE: dict[int, Any] = {}
#: the stop :func:`sigterm_raises` raised, kept until it ends: raised again by :func:`raise_if_stopped`
#: where Python swallowed it (a handler that ran inside a garbage-collection or weakref callback, whose
#: exceptions Python prints as "Exception ignored in ..." and drops)
_RAISED: list[RunInterrupted] = []


def command_line(extra: list[str], drop: tuple[str, ...] = ()) -> str:
    """This process's command line, less the overrides starting with ``drop``, plus ``extra``."""
    program = "python train.py" if sys.argv[0].endswith("train.py") else Path(sys.argv[0]).name
    args = [a for a in sys.argv[1:] if not a.lstrip("+~").startswith(drop)]
    return " ".join([program, *(shlex.quote(a) for a in args + extra)])


def continue_command(sweep_dir: Path | str | None) -> str:
    """The command that continues this run (``resume=true``), or this sweep when ``sweep_dir`` is given
    (``resume=true hydra.sweep.dir=<it>``; in a job run by another process than the sweep's, as a joblib
    worker or a submitit job, whose command line is its launcher's: the sweep's, from its
    ``multirun.yaml``)."""
    if sweep_dir is None:
        return command_line(["resume=true"], drop=("resume=",))
    again = ["resume=true", f"hydra.sweep.dir={sweep_dir}"]
    if not Path(sys.argv[0]).name.endswith(("train.py", "lossbench-train")):
        saved = saved_sweep_command(Path(sweep_dir))
        if saved is not None:
            return " ".join([saved, *again])
    return command_line(again, drop=("resume=", "hydra.sweep.dir="))


def saved_sweep_command(sweep_dir: Path) -> str | None:
    """``python train.py -m <the sweep's overrides>`` from the ``multirun.yaml`` Hydra wrote in
    ``sweep_dir`` (None without it), less ``resume`` and the sweep dir."""
    from lossbench.run_dir import saved_sweep

    saved = saved_sweep(sweep_dir)
    if saved is None:
        return None
    from lossbench.overrides import override_list

    given = saved.overrides
    hydra = [o for o in override_list(given.hydra) if not o.startswith(("hydra.mode=", "hydra.sweep.dir="))]
    task = [o for o in override_list(given.task) if not o.lstrip("+~").startswith("resume=")]
    return " ".join(["python train.py", "-m", *(shlex.quote(o) for o in hydra + task)])


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`RunInterrupted` (message empty) wherever Lightning's own handler
    is not in place; the previous handler comes back on exit.

    During fit and test Lightning installs its handler and calls this one from it; this one then does
    nothing (it is no longer the process's handler) and Lightning stops after the current batch.

    Where Python swallows the raised stop (the signal arrived inside a garbage-collection or weakref
    callback), ``sys.unraisablehook`` drops it silently instead of printing "Exception ignored in" with a
    traceback: :func:`raise_if_stopped` raises it again where the command goes on.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if signal.getsignal(signal.SIGTERM) is handler:
            _RAISED.append(RunInterrupted("SIGTERM", ""))
            raise _RAISED[-1]

    def unraisable(info: Any) -> None:
        if not (isinstance(info.exc_value, RunInterrupted) and info.exc_value in _RAISED):
            previous_hook(info)

    previous, previous_hook = signal.signal(signal.SIGTERM, handler), sys.unraisablehook
    sys.unraisablehook = unraisable  # a swallowed stop is raised again, not printed as an ignored error
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        _RAISED.clear()


def raise_if_stopped() -> None:
    """Raise the stop :func:`sigterm_raises` raised, if any: called where a command goes from one run to
    the next, so a SIGTERM whose exception Python swallowed still stops it there."""
    if _RAISED:
        raise _RAISED[-1]


def as_interrupted(err: BaseException) -> RunInterrupted | None:
    """The stop behind ``err`` as a :class:`RunInterrupted` (Ctrl-C's ``KeyboardInterrupt`` is SIGINT's),
    also when a library wrapped it (Hydra composing a config, OmegaConf resolving one); None for any other
    error."""
    stop = cause_of(err, RunInterrupted)
    if isinstance(stop, RunInterrupted):
        return stop
    if (submitit := submitit_stop(err)) is not None:
        return submitit
    return RunInterrupted("SIGINT", "") if cause_of(err, KeyboardInterrupt) is not None else None


def raised_in_submitit(err: BaseException) -> bool:
    """Whether ``err`` was raised in submitit's own code (its ``sys.exit`` once it requeued a job), not by
    another ``sys.exit`` whose exit a later error carries as its context."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"{os.sep}submitit{os.sep}" in tb.tb_frame.f_code.co_filename


#: the signal submitit's jobs get before their time limit or on preemption (``--signal=USR2@...``)
SUBMITIT_SIGNAL = "SIGUSR2"


def submitit_stop(err: BaseException) -> RunInterrupted | None:
    """The stop behind ``err`` when submitit's handler of :data:`SUBMITIT_SIGNAL` raised it in this job,
    also wrapped by a library (``torch.save`` turns it into a ``RuntimeError``): its ``UncompletedJobError``
    (no requeue left: the time limit), or its ``SystemExit`` after it requeued the job. Under Slurm,
    ``requeued`` is that exit's status: Slurm restarts the job with ``SLURM_RESTART_COUNT`` set, which
    continues from ``last.ckpt``, and the exit keeps submitit from recording a result meanwhile. Its local
    executor would start the job afresh, so there the job ends as stopped (``requeued`` None) and the sweep
    says how to continue it. None for anything else, Lightning's exit on Ctrl-C included."""
    utils = sys.modules.get("submitit.core.utils")
    if utils is not None and cause_of(err, utils.UncompletedJobError) is not None:
        return RunInterrupted(SUBMITIT_SIGNAL, "")
    if not os.environ.get("SUBMITIT_EXECUTOR") or cause_of(err, KeyboardInterrupt) is not None:
        return None
    exit_ = cause_of(err, SystemExit)
    if not isinstance(exit_, SystemExit) or not raised_in_submitit(exit_):
        return None
    on_slurm = os.environ.get("SUBMITIT_EXECUTOR") == "slurm"
    code = exit_.code if isinstance(exit_.code, int) else 1
    return RunInterrupted(SUBMITIT_SIGNAL, "", requeued=code if on_slurm else None)


def stopped_outside_training(signal_name: str, last_checkpoint: Path, sweep_dir: Path | None) -> str:
    """One line for a stop outside fit and test: what is kept and the command that goes on."""
    if not last_checkpoint.is_file() and sweep_dir is None:
        return (
            f"stopped by {signal_name} before any epoch finished: nothing to keep, run the same command again"
        )
    again = continue_command(sweep_dir)
    if not last_checkpoint.is_file():  # the sweep's finished jobs are kept; this one starts again
        return (
            f"stopped by {signal_name} before this job's first epoch finished (it starts again). "
            f"Continue with: {again}"
        )
    return f"stopped by {signal_name} outside training: {last_checkpoint} is kept. Continue with: {again}"


def exit_while_starting(program: str, kept: str = "nothing was run") -> None:
    """Until :func:`started`, SIGINT and SIGTERM end the process at once with one line, ``kept`` saying
    what is kept and how to go on (a signal the process ignores, as a shell's background job ignores
    SIGINT, stays ignored; while an earlier call's handlers are in place, they stay)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        from lossbench.run_dir_claim import release_claimed

        release_claimed()
        print(f"{program}: stopped by {name} while starting: {kept}", file=sys.stderr, flush=True)
        os._exit(SIGNAL_EXIT[name])

    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN or signum in _BEFORE:
            continue
        _BEFORE[signum] = current
        signal.signal(signum, handler)


def started() -> None:
    """The start is over: the handlers in place before :func:`exit_while_starting` come back."""
    while _BEFORE:
        signum, handler = _BEFORE.popitem()
        signal.signal(signum, handler)
