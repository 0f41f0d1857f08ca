"""Checks of a table's target columns: missing values, the task they pose, and whether they suit it.

The task follows from the target unless ``data.task`` sets it: text, boolean or integer labels →
classification, floats → regression, except an integer target with too many distinct values to be classes
(more than :data:`MANY_CLASSES`, or more than 10 with fewer than three rows per value on average, too few
for a stratified split), which is regression, said in an INFO line; several 0/1 columns → multi-label,
other several columns → multi-target regression (a float target of a few whole numbers, 0.0/1.0 labels
saved as floats, too, with an INFO line naming ``data.task``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lossbench.data.table_classes import note_near_duplicate_labels, small_classes_problem
from lossbench.data.table_features import number_markers
from lossbench.data.table_numbers import comma_decimal_problem
from lossbench.data.table_problems import Problems, note, override_value, plain
from lossbench.data.table_values import exact_numbers, note_far_values, too_large_problem
from lossbench.task import Task

if TYPE_CHECKING:
    from lossbench.data.table_checks import TableOptions

log = logging.getLogger(__name__)

#: an integer target with more distinct values than this is taken for a quantity (regression)
MANY_CLASSES = 50


def is_binary(column: pd.Series) -> bool:
    """An integer or boolean column holding only 0 and 1 (a label of a multi-label target)."""
    types = pd.api.types
    return (types.is_integer_dtype(column) or types.is_bool_dtype(column)) and set(column.unique()) <= {0, 1}


def as_numbers(column: pd.Series) -> pd.Series:
    """The column's values as numbers (booleans as 0/1); a value that is not one, or is missing, as NaN."""
    return pd.to_numeric(column.astype(object).replace({True: 1, False: 0}), errors="coerce")


def only_zero_one(column: pd.Series) -> bool:
    """Every present value is 0 or 1, whatever its type (integer, boolean, float): a label column."""
    values = as_numbers(column.dropna())
    return bool(len(values)) and bool(values.isin((0, 1)).all())


def many_values(column: pd.Series) -> bool:
    """An integer column with too many distinct values to be classes (see the module docstring)."""
    distinct = column.nunique()
    return distinct > MANY_CLASSES or (distinct > 10 and 3 * distinct > column.count())


def whole_labels(column: pd.Series) -> bool:
    """A float column of a few whole numbers (0.0 and 1.0; 1.0, 2.0, 3.0): labels written as floats."""
    values = column.dropna()
    return (
        pd.api.types.is_float_dtype(column)
        and 0 < values.nunique() <= 10
        and bool(np.all(np.mod(values.to_numpy(), 1.0) == 0.0))
    )


def infer_task(target: pd.DataFrame, where: str) -> Task:
    """The task the target columns pose (see the module docstring); a float target of a few whole numbers
    stays regression, said in an INFO line naming ``data.task``."""
    if target.shape[1] > 1:
        if all(is_binary(c) for _, c in target.items()):
            return Task.MULTILABEL
        if all(only_zero_one(c) for _, c in target.items()):
            note(
                log,
                logging.INFO,
                "%s: target columns %s hold only 0 and 1, some as floats: inferred as multi-target "
                "regression (set data.task=multilabel if they are labels)",
                where,
                list(target.columns),
            )
        return Task.REGRESSION
    column = target.iloc[:, 0]
    if pd.api.types.is_float_dtype(column):
        if whole_labels(column):
            note(
                log,
                logging.INFO,
                "%s: target %r holds %d distinct whole numbers as floats (%s): inferred as regression (set "
                "data.task=classification if they are classes)",
                where,
                column.name,
                column.nunique(),
                ", ".join(f"{v:g}" for v in sorted(column.dropna().unique())[:5]),
            )
        return Task.REGRESSION
    if pd.api.types.is_integer_dtype(column) and many_values(column):
        note(
            log,
            logging.INFO,
            "%s: target %r has %d distinct integer values in %d rows: inferred as regression (set "
            "data.task=classification to keep them as classes)",
            where,
            column.name,
            column.nunique(),
            len(column),
        )
        return Task.REGRESSION
    if pd.api.types.is_integer_dtype(column) and column.nunique() > 10:
        values = sorted(column.dropna().unique())
        if values[0] < 0 or values[-1] >= 2 * len(values):  # not class numbers 0..C-1 (or 1..C)
            note(
                log,
                logging.INFO,
                "%s: target %r holds %d distinct integers from %d to %d: inferred as %d classes (set "
                "data.task=regression if it is a quantity)",
                where,
                column.name,
                len(values),
                values[0],
                values[-1],
                len(values),
            )
    return Task.CLASSIFICATION


def rows_with_target(
    frame: pd.DataFrame, options: TableOptions, problems: Problems, where: str
) -> tuple[pd.DataFrame, int]:
    """The rows whose target is present, and how many rows ``drop_missing_target`` dropped.

    Without ``drop_missing_target``, a missing target is a problem (and the other checks look at the
    rows with a target). An integer column that pandas read as floats only for its missing values is an
    integer column again.
    """
    target = frame[list(options.target)]
    missing = target.isna().any(axis=1).to_numpy()
    count = int(missing.sum())
    if not count:
        return frame, 0
    if options.drop_missing_target:
        note(
            log,
            logging.INFO,
            "%s: dropped %d row(s) without a target (data.drop_missing_target=true)",
            where,
            count,
        )
    else:
        per_column = {c: int(n) for c, n in target.isna().sum().items() if n}
        text = ", ".join(f"{c!r} has {n}" for c, n in per_column.items())
        problems.add(
            f"target column {text} missing values",
            "set data.drop_missing_target=true to drop those rows (a target cannot be imputed), or fill them "
            "in the file",
            drop_missing_target=True,
        )
    kept = frame.loc[~missing].reset_index(drop=True)
    for col in target.columns[target.isna().any().to_numpy()]:
        values = kept[col]
        if pd.api.types.is_float_dtype(values) and len(values) and bool((values % 1 == 0).all()):
            kept[col] = values.astype(np.int64)
    return kept, count if options.drop_missing_target else 0


def number_problems(target: pd.DataFrame, task: Task | None, problems: Problems) -> bool:
    """Target columns read as text that hold numbers: written with a decimal comma (``3,5``), or with a
    few text values marking missing ones (``?``; unless ``data.task=classification``), which would
    otherwise be classes. Records a problem for each; whether there was one."""
    found = False
    for col, values in target.items():
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        present = values.dropna()
        if comma_decimal_problem(f"target column {col!r}", present, problems):
            found = True
        elif task is not Task.CLASSIFICATION and (tokens := number_markers(present)):
            problems.add(
                f"target column {col!r} holds numbers and the text values {tokens}",
                f"if they mark missing targets set data.na_values={override_value(tokens)} and "
                "data.drop_missing_target=true, otherwise fix them in the file (or set "
                "data.task=classification if every value is a class)",
                na_values=tokens,
                drop_missing_target=True,
            )
            found = True
    return found


def check_target(target: pd.DataFrame, task: Task, problems: Problems) -> None:
    """The target columns suit the task: two classes or more, 0/1 labels, finite numbers."""
    names = list(target.columns)
    if task is Task.CLASSIFICATION:
        if len(names) > 1:
            problems.add(
                "data.task=classification takes one target column", "data.target=<column>", config=True
            )
            return
        classes = target.iloc[:, 0].dropna().unique()
        if len(classes) < 2:
            problems.add(
                f"target {names[0]!r} has a single class ({plain(classes[0])!r})",
                "classification needs at least two; is data.target the right column?",
            )
        note_near_duplicate_labels(names[0], classes)
        if not problems.options.get("split_column"):  # a given split is not stratified
            small_classes_problem(names[0], target.iloc[:, 0], problems)
        return
    if task is Task.MULTILABEL:
        if len(names) < 2:
            problems.add(
                "data.task=multilabel takes one 0/1 target column per label",
                "data.target=[label_a,label_b]",
                config=True,
            )
        for col, values in target.items():
            numeric = as_numbers(values)
            if not numeric.isin((0, 1)).all():
                bad = sorted({str(plain(v)) for v in values[~numeric.isin((0, 1))]})[:5]
                problems.add(
                    f"multi-label target column {col!r} holds {bad}",
                    "each label column must be 0/1 (or true/false)",
                )
            elif numeric.nunique() == 1:
                problems.add(
                    f"label column {col!r} is {int(numeric.iloc[0])} in every row",
                    "no loss can learn a label that never changes, and its AP is undefined: leave it out of "
                    "data.target",
                )
        return
    for col, values in target.items():
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.isna().any():
            fix = {"task": "classification"} if len(names) == 1 else {}
            several = "recode each label column as 0/1 for data.task=multilabel, or fix the column"
            problems.add(
                f"target column {col!r} is not numeric, so it cannot be regressed",
                "use data.task=classification, or fix the column" if len(names) == 1 else several,
                **fix,
            )
        elif not np.isfinite(numeric.to_numpy(dtype=np.float64)).all():
            problems.add(f"target column {col!r} has infinite values", "fix or drop those rows in the file")
        elif too_large_problem(
            f"target column {col!r}", str(col), numeric.to_numpy(np.float64), problems, True
        ):
            continue
        elif numeric.nunique() == 1:
            problems.add(
                f"target column {col!r} holds one value ({plain(numeric.iloc[0])!r}) in every row",
                "there is nothing to regress and its R² is undefined: "
                + ("leave it out of data.target" if len(names) > 1 else "is data.target the right column?"),
            )
        else:
            note_far_values(f"target column {col!r}", str(col), exact_numbers(numeric), True, [])


def check_inferred_labels(target: pd.DataFrame, problems: Problems) -> None:
    """Several target columns of which some hold only 0 and 1 (as integers, booleans or floats) and others
    whole numbers nearly all 0 or 1 (a stray ``2``): labels with a few wrong cells, which the inferred task
    (regression) would train as numbers. Records a problem naming the cells and both tasks."""
    binary = [str(c) for c, values in target.items() if only_zero_one(values)]
    if target.shape[1] < 2 or not binary or len(binary) == target.shape[1]:
        return
    for col, column in target.items():
        values = as_numbers(column.dropna())
        if str(col) in binary or not len(values) or values.isna().any() or not (values % 1 == 0).all():
            continue
        stray = ~values.isin((0, 1))
        if stray.any() and stray.mean() <= 0.1:
            bad = sorted({plain(v) for v in values[stray]})[:5]
            problems.add(
                f"target columns {binary} hold only 0 and 1, but {col!r} holds {bad} in {int(stray.sum())} "
                "rows, so the targets were taken for numbers to regress",
                "if they are labels fix those cells (data.task=multilabel names each); to regress every "
                "column set data.task=regression",
            )
