"""Checks of a numeric column's magnitudes: values a float32 cannot hold, a few values far beyond the rest.

Training casts features and targets to float32, whose largest value is about 3.4e38: a larger finite value
(``1e300``) becomes infinite there and the loss NaN, so it is a problem naming the column. A few values many
orders of magnitude beyond the others (``1e30`` placeholders among values near 1) are likely missing-value
markers: a warning names the column and how many there are. "Far" is robust — farther from the median than
:data:`FAR` times the median absolute deviation — and placeholders repeat or sit past a gap: the far values
are named when they take at most :data:`FEW_FAR` distinct values, or when the nearest of them is more than
:data:`GAP` times as far from the median as the farthest of the rest, so a heavy tail (follower counts, a
Pareto column) whose far values are many and spread out is not named.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lossbench.data.table_problems import Problems, note, override_value

log = logging.getLogger(__name__)

#: the largest value a float32 holds
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: a value farther from the median than this many median absolute deviations is far beyond the rest
FAR = 1e6
#: far values taking at most this many distinct values are placeholders
FEW_FAR = 2
#: far values this many times farther from the median than every other value are placeholders
GAP = 1e3


def as_written(value: float) -> str:
    """A number as a ``data.na_values`` entry that Hydra reads back as the same number, e.g. ``1e30``,
    ``-999``, ``99999999``, ``1.7976931348623157e308``: the shortest text that round-trips, without the
    ``.0`` of an integral value (Hydra reads ``-999`` as the integer, equal to it); an integer is written
    whole (pandas matches an integer column's ``na_values`` as text, and ``float`` rounds beyond 2**53)."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = repr(float(value)).replace("e+", "e")
    return text.removesuffix(".0")


def exact_numbers(series: pd.Series) -> np.ndarray:
    """A numeric column's values, NaN where missing; a column of integers (none missing) as integers, so a
    placeholder beyond 2**53 is named as the file writes it."""
    integers = pd.api.types.is_signed_integer_dtype(series.dtype) or (
        pd.api.types.is_unsigned_integer_dtype(series.dtype) and series.max() <= np.iinfo(np.int64).max
    )
    if integers and not series.isna().any():
        return series.to_numpy(dtype=np.int64)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def markers_fix(column: str, values: list[float], target: bool, drop: list[str]) -> str:
    """The words fixing values that may mark missing ones in ``column``."""
    markers = f"data.na_values=[{','.join(as_written(v) for v in values)}]"
    if target:
        return f"if they mark missing targets set {markers} and data.drop_missing_target=true, else fix them"
    return (
        f"if they mark missing values set {markers} (with data.impute=median), or drop the column with "
        f"data.drop={override_value([*drop, column])}"
    )


def too_large_problem(what: str, column: str, values: np.ndarray, problems: Problems, target: bool) -> bool:
    """Record a problem when the column ``what`` holds finite values beyond float32's range; whether it does.
    The fix marks them missing (:func:`markers_fix`) when they are at most half the column's values."""
    finite = values[np.isfinite(values)]
    huge = finite[np.abs(finite) > FLOAT32_MAX]
    if not len(huge):
        return False
    shown = sorted(set(huge.tolist()))[:5]
    drop = list(problems.options.get("drop") or ())
    few = 2 * len(huge) <= len(finite)
    if target:
        fix = {"na_values": [as_written(v) for v in shown], "drop_missing_target": True} if few else {}
    else:
        fix = {"na_values": [as_written(v) for v in shown], "impute": "median"} if few else {"drop": [column]}
    how = markers_fix(column, shown, target, drop) if few else "rescale the column in the file"
    if not few and not target:
        how += f", or drop it with data.drop={override_value([*drop, column])}"
    problems.add(
        f"{what} holds {len(huge)} value(s) beyond float32's range of ±3.4e38 ({as_written(shown[0])}), "
        "which training would turn into infinities and a NaN loss",
        how,
        **fix,
    )
    return True


def note_far_values(what: str, column: str, values: np.ndarray, target: bool, drop: list[str]) -> None:
    """Warn when a few of the column's values lie far beyond the rest (see the module docstring)."""
    finite = values[np.isfinite(values)]
    if len(finite) < 10:
        return
    median = float(np.median(finite))
    mad = float(np.median(np.abs(finite - median)))
    if mad <= 0:
        return
    distance = np.abs(finite - median)
    far = distance > FAR * mad
    if not far.any() or 2 * int(far.sum()) > len(finite):
        return
    distinct = sorted(set(finite[far].tolist()))
    if len(distinct) > FEW_FAR and distance[far].min() <= GAP * distance[~far].max():
        return
    shown = distinct[:3]
    note(
        log,
        logging.WARNING,
        "%s holds %d value(s) many orders of magnitude beyond the rest (%s; median %.3g): %s",
        what,
        int(far.sum()),
        ", ".join(as_written(v) for v in shown),
        median,
        markers_fix(column, shown, target, drop),
    )
