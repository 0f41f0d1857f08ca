"""User-facing errors: each names the problem and the fix, and is shown as one line."""


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
    ok = True
    if low is not None:
        ok &= value >= low if low_inclusive else value > low
    if high is not None:
        ok &= value <= high if high_inclusive else value < high
    if not ok:
        left = ("[" if low_inclusive else "(") + ("-inf" if low is None else f"{low:g}")
        right = ("inf" if high is None else f"{high:g}") + ("]" if high_inclusive else ")")
        raise ConfigError(f"{name}={value!r} is out of range: expected a value in {left}, {right}")
    return value


def check_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ConfigError`` listing them."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid: choose one of {', '.join(choices)}")
    return value
