"""Checks of a table's feature columns: every column that cannot be encoded, and every missing value.

A feature column is a problem when it holds dates or times (typed, or as date text), numbers written
with a decimal comma (read with ``data.decimal=','``) or with thousands separators (``data.thousands=','``),
numbers mixed with a few text values (missing markers, fixed by ``data.na_values``), values of mixed types,
a distinct text value in every row (an id), consecutive distinct integers (a row number, which leaks the
file's order), or no value at all; the fix for each is to drop it (the advice keeps the ``data.drop``
entries given), or to name its markers. Missing or infinite values in the other columns are a problem
unless ``data.impute=median``. A distinct integer in every row that does not count the rows (an id?) is
used as a feature, with a warning naming ``data.drop``; so is a text column of many distinct values with
few rows each (a repeated id), whose values would each be a one-hot column, and a text column of at least
half numbers (``1, 2, 3, 4+``), with a warning naming its text values.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from lossbench.data.table_numbers import comma_decimal_problem
from lossbench.data.table_problems import Problems, listing, note, override_value
from lossbench.data.table_values import exact_numbers, note_far_values, too_large_problem

log = logging.getLogger(__name__)
#: more columns with missing values than this are named in one problem
MANY_MISSING = 5
#: a text column whose values are at least this share numbers is numbers with a few text values
MOSTLY = 0.5
#: a text column with more distinct values than this, and fewer rows than ROWS_PER_CATEGORY per value on
#: average, is named in a warning: one-hot encoding makes each value a feature column
MANY_CATEGORIES = 20
ROWS_PER_CATEGORY = 5


def numeric_columns(features: pd.DataFrame) -> list[str]:
    """The numeric, non-boolean columns (standardised; the others are one-hot encoded)."""
    types = pd.api.types
    return [
        c
        for c in features.columns
        if types.is_numeric_dtype(features[c]) and not types.is_bool_dtype(features[c])
    ]


def numbers_rows(series: pd.Series) -> bool:
    """More than 20 distinct integers, consecutive: a row number."""
    if not pd.api.types.is_integer_dtype(series) or len(series) <= 20 or not series.is_unique:
        return False
    return int(series.max()) - int(series.min()) == len(series) - 1


def numbers_in(present: pd.Series) -> pd.Series:
    """The text values ``present`` read as numbers (``NaN`` where one is not a number)."""
    return pd.to_numeric(present.astype(str), errors="coerce")


def number_markers(present: pd.Series, share: float = 0.9, parsed: pd.Series | None = None) -> list[str]:
    """The text values (at most 5) of a column whose values ``present`` (read as numbers: ``parsed``) are at
    least ``share`` numbers: markers of missing values such as ``?``; empty otherwise."""
    parsed = numbers_in(present) if parsed is None else parsed
    if not len(present) or parsed.notna().mean() < share:
        return []
    return sorted({str(v) for v in present[parsed.isna()]})[:5]


def note_mostly_numbers(col: str, present: pd.Series, parsed: pd.Series, drop: str) -> bool:
    """Warn when at least :data:`MOSTLY` of the text column's values ``present`` (read as numbers:
    ``parsed``) are numbers: one-hot encoded, each number is a category of its own, which suits categories
    such as ``1, 2, 3, 4+`` but not numbers with text markers. Names the text values; whether it warned."""
    tokens = number_markers(present, MOSTLY, parsed)
    if not tokens:
        return False
    distinct = int(present[parsed.isna()].astype(str).nunique())
    more = f" ({distinct} distinct)" if distinct > len(tokens) else ""
    note(
        log,
        logging.WARNING,
        "column %r holds numbers in %.0f%% of its rows and the text values %s%s, so each number is a "
        "category of its own: if the text values mark missing ones set data.na_values=%s (with "
        "data.impute=median), if they are not categories drop it with %s",
        col,
        100 * parsed.notna().mean(),
        tokens,
        more,
        override_value(tokens),
        drop,
    )
    return True


def note_many_categories(col: str, series: pd.Series, drop: str) -> None:
    """Warn when a text column has more than :data:`MANY_CATEGORIES` distinct values and fewer than
    :data:`ROWS_PER_CATEGORY` rows per value on average (a repeated id?): each value is a one-hot column."""
    distinct = int(series.nunique())
    if distinct <= MANY_CATEGORIES or ROWS_PER_CATEGORY * distinct <= series.count():
        return
    note(
        log,
        logging.WARNING,
        "column %r has %d distinct text values in %d rows, so one-hot encoding adds up to %d feature columns "
        "for it: if it is an id or free text, drop it with %s",
        col,
        distinct,
        int(series.count()),
        distinct,
        drop,
    )


def check_features(features: pd.DataFrame, impute: str, problems: Problems) -> None:
    """Record a problem for each feature column that cannot be encoded, then for each with missing values."""
    numeric = set(numeric_columns(features))
    missing: dict[str, int] = {}
    given = list(problems.options.get("drop") or ())  # the advice keeps them: a fix must not undo another
    for col in features.columns:
        series = features[col]
        drop = f"data.drop={override_value([*given, col])}"
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            problems.add(
                f"column {col!r} holds dates/times, which cannot be encoded",
                f"convert it to numbers in the file, or drop it with {drop}",
                drop=[col],
            )
            continue
        if series.isna().all():
            problems.add(f"column {col!r} is empty (no value in any row)", f"drop it with {drop}", drop=[col])
            continue
        if col in numeric:
            if numbers_rows(series):
                problems.add(
                    f"column {col!r} numbers the rows (consecutive distinct integers), a row id that can "
                    "leak the file's order",
                    f"drop it with {drop}",
                    drop=[col],
                )
                continue
            if pd.api.types.is_integer_dtype(series) and len(series) > 20 and series.is_unique:
                note(
                    log,
                    logging.WARNING,
                    "column %r holds a distinct integer in every row: if it is an id, drop it with %s (it is "
                    "a feature now)",
                    col,
                    drop,
                )
            values = exact_numbers(series)
            if too_large_problem(f"column {col!r}", str(col), values, problems, target=False):
                continue
            note_far_values(f"column {col!r}", str(col), values, False, given)
            missing[col] = int((~np.isfinite(values)).sum())
            continue
        present = series.dropna()
        if comma_decimal_problem(f"column {col!r}", present, problems):
            continue
        parsed = numbers_in(present)
        if tokens := number_markers(present, parsed=parsed):
            problems.add(
                f"column {col!r} holds numbers and the text values {tokens}",
                f"if they mark missing values set data.na_values={override_value(tokens)} (with "
                "data.impute=median to fill them), otherwise fix the numbers in the file",
                na_values=tokens,
                impute="median",
            )
            continue
        kinds = {type(v) for v in present}
        if kinds - {str} and len(kinds) > 1:
            problems.add(
                f"column {col!r} mixes {sorted(k.__name__ for k in kinds)} values, which cannot be encoded",
                f"make it one type in the file, or {drop}",
                drop=[col],
            )
            continue
        if text_dates(present):
            problems.add(
                f"column {col!r} holds dates/times as text, which one-hot encoding cannot generalise from",
                f"convert it to numbers in the file, or drop it with {drop}",
                drop=[col],
            )
            continue
        if series.nunique() == len(series) and len(series) > 20:
            problems.add(
                f"column {col!r} has a distinct text value in every row (an id?), which one-hot encoding "
                "cannot generalise from",
                f"drop it with {drop}",
                drop=[col],
            )
            continue
        if not note_mostly_numbers(col, present, parsed, drop):
            note_many_categories(col, series, drop)
        missing[col] = int(series.isna().sum())
    missing = {col: count for col, count in missing.items() if count}
    if impute != "none" or not missing:
        return
    if len(missing) > MANY_MISSING:
        counts = [f"{col!r} ({count})" for col, count in missing.items()]
        problems.add(
            f"{len(missing)} feature columns have missing or infinite values: {listing(counts)}",
            "fill them in the file, drop the columns (data.drop), or set data.impute=median",
            impute="median",
        )
        return
    for col, count in missing.items():
        what = "missing or infinite" if col in numeric else "missing"
        problems.add(
            f"feature column {col!r} has {count} {what} values",
            f"fill them in the file, drop the column (data.drop={override_value([*given, col])}), or set "
            "data.impute=median",
            impute="median",
        )


#: a date with a four-digit year first (2024-03-01, 2024/3/1) or last (1.3.2024, 03/01/2024), optionally with
#: a time (2024-03-01T12:30:00); version numbers (1.2.3) and sizes (10-20-30) are not dates
_TIME = r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
_YEAR_FIRST = re.compile(r"(?:19|20)\d{2}[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME)
_YEAR_LAST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](?:19|20)\d{2}" + _TIME)


def is_date(text: str) -> bool:
    """Whether ``text`` is a calendar date (month 1-12, day 1-31, in either order when the year is last)."""
    if first := _YEAR_FIRST.fullmatch(text):
        return 1 <= int(first[1]) <= 12 and 1 <= int(first[2]) <= 31
    if last := _YEAR_LAST.fullmatch(text):
        a, b = int(last[1]), int(last[2])
        return 1 <= min(a, b) <= 12 and max(a, b) <= 31
    return False


def text_dates(present: pd.Series, share: float = 0.9, sample: int = 200) -> bool:
    """Whether at least ``share`` of (a sample of) the text values are dates or date-times."""
    values = [str(v).strip() for v in present.head(sample)]
    return bool(values) and sum(is_date(v) for v in values) >= share * len(values)
