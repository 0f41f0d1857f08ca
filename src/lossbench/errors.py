"""User-facing errors: each names the problem and the fix, and is shown as one line.

Also the one mapping from an error or an interruption to the process's exit status (:func:`exit_status`),
used by every entry point (``train.py``, ``lossbench-eval``, ``lossbench tune``/``advise``, the sweep end):

====  ===========================================================================
0     finished
1     a job of a sweep did not finish, or an unexpected error (with its traceback)
2     a :class:`LossbenchError`: the configuration or the data, named in one line
130   stopped by Ctrl-C (SIGINT), as a shell reports it
143   stopped by SIGTERM (Slurm preemption, ``kill``), as a shell reports it
====  ===========================================================================
"""

from __future__ import annotations

import math

#: exit statuses (see the module docstring)
EXIT_FAILED, EXIT_USAGE = 1, 2
#: the exit status a shell reports for a process ended by the signal (128 + its number)
SIGNAL_EXIT = {"SIGTERM": 143, "SIGINT": 130, "SIGUSR2": 140}  # SIGUSR2: submitit's time limit


class LossbenchError(Exception):
    """A problem with the user's configuration or data, reported without a traceback."""


class ConfigError(LossbenchError, ValueError):
    """An invalid option, hyper-parameter or combination of options."""


class LossTaskMismatchError(ConfigError):
    """The chosen loss cannot serve the data set's task."""


class NonFiniteLossError(LossbenchError):
    """The training loss became NaN or infinite."""


class DataError(LossbenchError):
    """Data that is missing, corrupt or inconsistent."""


def damaged_file(path: object, why: str, fix: str) -> DataError:
    """The one-line error for a file lossbench wrote that cannot be read back: which, why, and the fix."""
    return DataError(f"{path} is damaged ({why}): {fix}")


class CheckpointWriteError(LossbenchError, OSError):
    """A checkpoint could not be written (e.g. the disk is full); the earlier ones are intact."""


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` if it lies in the interval, else raise a ``ConfigError`` naming it and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} has the wrong type: expected a number")
    ok = math.isfinite(value)  # nan and inf are never a setting: inf made several losses NaN
    if low is not None:
        ok &= value >= low if low_inclusive else value > low
    if high is not None:
        ok &= value <= high if high_inclusive else value < high
    if not ok:
        left = "(-inf" if low is None else ("[" if low_inclusive else "(") + f"{low:g}"
        right = "inf)" if high is None else f"{high:g}" + ("]" if high_inclusive else ")")
        raise ConfigError(f"{name}={value!r} is out of range: expected a finite value in {left}, {right}")
    return value


def check_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ConfigError`` listing them."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid: choose one of {', '.join(choices)}")
    return value


class RunInterrupted(Exception):
    """A run was stopped by a signal; ``last.ckpt`` (if any) holds the last finished epoch. ``requeued``:
    the exit status of submitit's exit after it requeued the job (the process must end with it)."""

    def __init__(self, signal_name: str, message: str, *, requeued: int | None = None) -> None:
        super().__init__(message)
        self.signal_name = signal_name
        self.requeued = requeued

    @property
    def exit_status(self) -> int:
        return SIGNAL_EXIT[self.signal_name]


def cause_of(err: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of type ``kind`` in ``err``'s chain of causes (``err`` included), if any."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def root_error(err: BaseException) -> BaseException:
    """The :class:`LossbenchError` behind ``err`` (e.g. wrapped by Hydra's instantiate) or ``err``."""
    return cause_of(err, LossbenchError) or err


def message_line(err: BaseException) -> str:
    """The error's message with its lines joined into one. An error a ``DataLoader`` worker raised carries
    the worker's traceback in its message ("Caught DataError in DataLoader worker process 0. Original
    Traceback ..."): only its last line, the original message, is kept."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and "Original Traceback" in str(err):
        return lines[-1].split(": ", 1)[-1] if ": " in lines[-1] else lines[-1]
    return " ".join(lines)


def one_line(err: BaseException) -> str:
    """``Type: message`` with the message's lines joined into one."""
    text = message_line(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def exit_status(err: BaseException) -> int:
    """The exit status for an entry point ended by ``err`` (see the module docstring)."""
    if isinstance(err, RunInterrupted):
        return err.exit_status
    if isinstance(err, KeyboardInterrupt):
        return SIGNAL_EXIT["SIGINT"]
    return EXIT_USAGE if isinstance(root_error(err), LossbenchError) else EXIT_FAILED
