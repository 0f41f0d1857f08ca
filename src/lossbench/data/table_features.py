"""Checks of a table's feature columns: every column that cannot be encoded, and every missing value.

A feature column is a problem when it holds dates or times, numbers mixed with a few text values (missing
markers, fixed by ``data.na_values``), values of mixed types, a distinct text value in every row (an id),
or consecutive distinct integers (a row number, which leaks the file's order); the fix for each is to drop
it, or to name its markers. Missing or infinite values in the other columns are a problem unless
``data.impute=median``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossbench.data.table_problems import Problems, listing, override_value

#: more columns with missing values than this are named in one problem
MANY_MISSING = 5


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


def check_features(features: pd.DataFrame, impute: str, problems: Problems) -> None:
    """Record a problem for each feature column that cannot be encoded, then for each with missing values."""
    numeric = set(numeric_columns(features))
    missing: dict[str, int] = {}
    for col in features.columns:
        series = features[col]
        drop = f"data.drop=[{override_value(col)}]"
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            problems.add(
                f"column {col!r} holds dates/times, which cannot be encoded",
                f"convert it to numbers in the file, or drop it with {drop}",
                drop=[col],
            )
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
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            missing[col] = int((~np.isfinite(values)).sum())
            continue
        present = series.dropna()
        parsed = pd.to_numeric(present.astype(str), errors="coerce")
        if len(present) and parsed.notna().mean() >= 0.9:
            tokens = sorted({str(v) for v in present[parsed.isna()]})[:5]
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
        if series.nunique() == len(series) and len(series) > 20:
            problems.add(
                f"column {col!r} has a distinct text value in every row (an id?), which one-hot encoding "
                "cannot generalise from",
                f"drop it with {drop}",
                drop=[col],
            )
            continue
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
            f"fill them in the file, drop the column (data.drop=[{override_value(col)}]), or set "
            "data.impute=median",
            impute="median",
        )
