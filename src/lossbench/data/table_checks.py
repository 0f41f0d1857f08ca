"""Every check of a user's table before it is encoded: all problems found at once, raised as one error.

:func:`check_table` takes the table as read and the ``data.*`` options (:class:`TableOptions`) and returns
the feature and target columns, the task and the given split (:class:`CheckedTable`), or raises one
``DataError`` naming every problem with one line of overrides fixing them
(:mod:`lossbench.data.table_problems`). On the way it

- drops the file's row index — an unnamed first column (``Unnamed: 0``) of distinct values, or a column
  named like ``id``, ``index`` or ``rownames`` holding exactly ``0..n-1`` or ``1..n`` — with an INFO note;
- drops the rows without a target when ``drop_missing_target`` is true, and counts them;
- infers the task unless ``data.task`` sets it (:mod:`lossbench.data.table_target`).

:func:`check_table_file` reads the file first. Both need pandas and numpy only (no torch, no scikit-learn).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.data.table_features import check_features
from lossbench.data.table_io import read_table, repeated_columns
from lossbench.data.table_options import TableOptions
from lossbench.data.table_problems import Problems, listing, note
from lossbench.data.table_target import (
    check_inferred_labels,
    check_target,
    infer_task,
    number_problems,
    rows_with_target,
)
from lossbench.task import Task

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
#: names of columns that hold a row number when their values are exactly 0..n-1 or 1..n
INDEX_NAMES = frozenset({"index", "rownames", "row.names", "rowname", "row", "rowid", "row_id", "id", "idx"})


@dataclass
class CheckedTable:
    """A table that passed every check, ready to encode."""

    features: pd.DataFrame
    target: pd.DataFrame
    task: Task
    #: each row's ``train``/``val``/``test`` label from ``data.split_column``, or ``None``
    split: np.ndarray | None
    #: row-number columns dropped
    index_columns: list[str]
    #: rows dropped for a missing target (``drop_missing_target``)
    missing_target_rows: int


def counts_rows(series: pd.Series) -> bool:
    """Integers ``0..n-1`` or ``1..n``, each once, in any order."""
    if not pd.api.types.is_integer_dtype(series) or series.isna().any() or not series.is_unique:
        return False
    low, high = int(series.min()), int(series.max())
    return low in (0, 1) and high - low == len(series) - 1


def is_row_index(name: Any, series: pd.Series, first: bool) -> bool:
    """The file's row index: ``Unnamed: 0`` first holding distinct values, or an index name counting rows."""
    if first and name == "Unnamed: 0":
        return bool(series.notna().all() and series.is_unique)
    return str(name).strip().lower() in INDEX_NAMES and counts_rows(series)


def check_table_file(path: Path, options: TableOptions) -> CheckedTable:
    """Read the table file at ``path`` and check it (:func:`check_table`); needs no torch."""
    frame = read_table(
        path, options.na_values, options.sep, options.decimal, options.encoding, options.thousands
    )
    duplicates = repeated_columns(path, options.sep, options.encoding)
    return check_table(frame, options, f"table {path}", duplicates)


def check_table(
    frame: pd.DataFrame, options: TableOptions, where: str, duplicates: Mapping[str, int] | None = None
) -> CheckedTable:
    """Check the whole table; raise one error naming every problem (see the module docstring).

    Args:
        frame: the table as read.
        options: the ``data.*`` options.
        where: the table in messages, e.g. ``table my.csv``.
        duplicates: column names the file's header repeats, with their counts (pandas reads the copies of
            ``a`` as ``a.1``, ``a.2``, ...).
    """
    problems = Problems(where, options.as_overrides())
    frame = _without_copies(frame, duplicates or {}, problems)
    guessed = _check_named(frame, options, problems)
    named = [*options.target, *options.drop, *([options.split_column] if options.split_column else [])]
    first = frame.columns[0]
    index = [c for c in frame.columns if c not in named and is_row_index(c, frame[c], c == first)]
    if index:
        note(
            log,
            logging.INFO,
            "%s: column(s) %s number the rows, dropped (list them in data.drop to silence this)",
            where,
            listing([repr(c) for c in index]),
        )
        frame = frame.drop(columns=index)
    targets = list(options.target)
    has_target = all(t in frame.columns for t in targets)
    dropped = 0
    if has_target:
        frame, dropped = rows_with_target(frame, options, problems, where)
    split = None
    if options.split_column in frame.columns:
        split = _check_split(frame[options.split_column], options.split_column, problems)
    task = options.task or Task.CLASSIFICATION
    target = frame[[t for t in targets if t in frame.columns]]
    if has_target and len(frame) and not number_problems(target, options.task, problems):
        task = options.task or infer_task(target, where)
        check_target(target, task, problems)
        if options.task is None:
            check_inferred_labels(target, problems)
    not_features = [*named, *guessed]  # a target column named with a typo is not checked as a feature
    features = frame.drop(columns=[c for c in dict.fromkeys(not_features) if c in frame.columns])
    if features.shape[1] == 0:
        problems.add(
            "no feature columns left after the target and data.drop",
            "keep at least one column as a feature",
            config=True,
        )
    else:
        check_features(features, options.impute, problems)
    problems.raise_if_any()
    return CheckedTable(features, target, task, split, index, dropped)


def _without_copies(frame: pd.DataFrame, duplicates: Mapping[str, int], problems: Problems) -> pd.DataFrame:
    """A header naming a column twice is a problem; the renamed copies pandas made are left out."""
    if not duplicates:
        return frame
    problems.add(
        "the header repeats the column name(s) "
        + ", ".join(f"{name!r} ({count} times)" for name, count in duplicates.items()),
        "give each column its own name in the file",
    )
    copies = {f"{name}.{k}" for name, count in duplicates.items() for k in range(1, count)}
    return frame.drop(columns=[c for c in frame.columns if c in copies])


def _close(name: str, columns: list[str]) -> str | None:
    """The column whose name is closest to ``name`` (a typo or a different case), if any is close."""
    lower = {c.lower(): c for c in columns}
    match = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return lower[match[0]] if match else None


def _check_named(frame: pd.DataFrame, options: TableOptions, problems: Problems) -> list[str]:
    """Every column the options name must be in the table; returns the columns guessed for absent targets."""
    columns = [str(c) for c in frame.columns]
    absent = [t for t in options.target if t not in frame.columns]
    close = {t: _close(t, columns) for t in absent}
    guess = [close.get(t) or t for t in options.target]
    fix = {"target": guess[0] if len(guess) == 1 else guess} if all(close.values()) else {}
    for name in absent:
        hint = f"; did you mean {close[name]!r}?" if close[name] else ""
        problems.add(
            f"data.target: column {name!r} is not in the file",
            f"its columns are {listing(columns)}{hint}",
            **fix,
        )
    for name in options.drop:
        if name not in frame.columns:
            problems.add(
                f"data.drop: column {name!r} is not in the file", "remove it from data.drop", undrop=[name]
            )
    name = options.split_column
    if name and name not in frame.columns:
        guessed = _close(name, columns)
        problems.add(
            f"data.split_column: column {name!r} is not in the file",
            f"name one of its columns ({listing(columns)}), or set data.split_column=null",
            **({"split_column": guessed} if guessed else {}),
        )
    return [c for c in close.values() if c]


def _check_split(column: pd.Series, name: str, problems: Problems) -> np.ndarray | None:
    """Each row's split label, lower-cased; ``None`` after recording a problem."""
    values = column.astype(str).str.strip().str.lower().to_numpy()
    bad = sorted({str(v) for v in values} - set(SPLIT_NAMES))
    if bad:
        problems.add(f"data.split_column={name} holds {bad[:5]}", "its values must be train, val or test")
        return None
    absent = [s for s in SPLIT_NAMES if not np.any(values == s)]
    if absent:
        problems.add(
            f"data.split_column={name} has no {' or '.join(map(repr, absent))} rows",
            f"label some rows {' and some '.join(absent)}",
        )
        return None
    return values
