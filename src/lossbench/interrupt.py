"""Stopping on SIGTERM or Ctrl-C: the finished epochs kept, a non-zero exit, one line saying how to go on.

Lightning handles both signals itself. On SIGTERM (what Slurm sends on preemption and at the time limit)
it finishes the current batch and raises ``SIGTERMException``, a ``SystemExit`` with status 0; on Ctrl-C it
calls the callbacks' ``on_exception`` and exits with status 1. :func:`stopped_by_signal` turns both into
:class:`RunInterrupted`, which says which epoch ``checkpoints/last.ckpt`` holds and how to continue, and
exits with the shell's status for the signal (143, 130).

Under Slurm, Lightning's ``SLURMEnvironment(auto_requeue=True)``, its default when it detects Slurm,
requeues the job on the requeue signal (SIGUSR1: ``sbatch --signal=USR1@90``). The requeued job
(``SLURM_RESTART_COUNT`` ≥ 1) continues from ``last.ckpt`` as with ``resume=true``
(:func:`lossbench.resume.requeued`).

Jobs that hydra-submitit-launcher submits get SIGUSR2 before their time limit or when preempted, which
submitit handles itself: it requeues the job and exits, or, with no requeue left, raises
``UncompletedJobError``. Either is the run stopped by SIGUSR2, its ``last.ckpt`` kept
(:func:`lossbench.signals.submitit_stop`): exit status 140, or under Slurm, once the job is requeued,
submitit's own exit.

Outside fit and test, :mod:`lossbench.signals` gives a stop its one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lossbench.config import in_multirun
from lossbench.errors import RunInterrupted
from lossbench.resume import checkpoint_epoch
from lossbench.run_dir import RunDir
from lossbench.signals import command_line, continue_command, raise_if_stopped, submitit_stop
from lossbench.spawned import end_spawned_processes

__all__ = [
    "RunInterrupted",
    "command_line",
    "interrupted_message",
    "stop_message",
    "stopped_by",
    "stopped_by_signal",
]


@contextmanager
def stopped_by(trainer: Any, run_dir: RunDir) -> Iterator[None]:
    """A SIGTERM or Ctrl-C during fit/test of the run in ``run_dir`` becomes :class:`RunInterrupted` saying
    how to continue; processes the strategy spawned to fit in (``ddp_spawn``) are ended first."""
    try:
        with stopped_by_signal(trainer):
            yield
    except RunInterrupted as err:
        end_spawned_processes(trainer)
        sweep_dir = Path(HydraConfig.get().sweep.dir) if in_multirun() else None
        fitting = trainer.state.fn == TrainerFn.FITTING
        message = stop_message(
            err.signal_name,
            run_dir.last_checkpoint,
            trainer.current_epoch,
            trainer.max_epochs,
            sweep_dir,
            fitting,
        )
        raise RunInterrupted(err.signal_name, message, requeued=err.requeued) from None


@contextmanager
def stopped_by_signal(trainer: Any) -> Iterator[None]:
    """Re-raise Lightning's exits on SIGTERM and Ctrl-C as :class:`RunInterrupted` (message filled later);
    a SIGTERM a library swallowed before (an ``except Exception`` in ``wandb.init``, a data library's) stops
    the run here, before it trains or tests."""
    try:
        raise_if_stopped()
        yield
    except SIGTERMException:
        raise RunInterrupted("SIGTERM", "") from None
    except SystemExit as err:
        if not trainer.interrupted:  # someone else's exit: not Lightning's Ctrl-C handling
            raise
        raise (submitit_stop(err) or RunInterrupted("SIGINT", "")) from None
    except Exception as err:
        if (stop := submitit_stop(err)) is None:
            raise
        raise stop from None


def stop_message(
    signal_name: str,
    last_checkpoint: Path,
    current_epoch: int,
    max_epochs: int | None,
    sweep_dir: Path | None,
    fitting: bool = True,
) -> str:
    """:func:`interrupted_message` for a run whose ``last.ckpt`` is ``last_checkpoint``: the epoch stopped
    is the later of ``current_epoch`` and the one after the epoch that checkpoint holds (a fit in spawned
    processes, or a packed replica's, leaves no epoch of its own here), none once ``max_epochs`` were done."""
    last_epoch = checkpoint_epoch(last_checkpoint) if last_checkpoint.is_file() else None
    epoch: int | None = max(current_epoch, last_epoch + 1 if last_epoch is not None else 0)
    if max_epochs is not None and 0 <= max_epochs <= epoch:
        epoch = None
    return interrupted_message(signal_name, epoch, last_checkpoint, last_epoch, sweep_dir, fitting)


def interrupted_message(
    signal_name: str,
    epoch: int | None,
    last_checkpoint: Path,
    last_epoch: int | None,
    sweep_dir: Path | None,
    fitting: bool = True,
) -> str:
    """One line: what stopped the run (during ``epoch`` of its fit, after its last epoch: ``epoch`` None,
    or after it: ``fitting`` false), what ``last.ckpt`` holds, and the command that continues it."""
    during = f"during epoch {epoch}" if epoch is not None else "after its last epoch"
    stopped = f"stopped by {signal_name} " + (during if fitting else "after training, while testing")
    if last_epoch is None and sweep_dir is None:
        return f"{stopped}, before any epoch finished: no checkpoint to continue from, run it again"
    again = continue_command(sweep_dir)
    if last_epoch is None:  # the sweep's finished jobs are kept; this one starts again
        return f"{stopped}, before this job's first epoch finished (it starts again). Continue with: {again}"
    held = f"{last_checkpoint} holds epoch {last_epoch}, the last one finished"
    return f"{stopped}: {held}. Continue with: {again}"
