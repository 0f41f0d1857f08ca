"""A table's fitted feature encoding as JSON, and the same encoding applied to another table.

A run on a table fits its ``ColumnTransformer`` (:meth:`lossbench.data.table.TableDataModule.preprocess`)
on its training rows: the numeric columns' medians (``data.impute=median``), means and scales
(``data.standardize``), the categorical columns' most frequent values and categories. The model learned
those units. :func:`encoding_of` writes them down (``data_info.encoding`` in ``metrics.json``), and
``lossbench-eval`` on another file of the same columns encodes it with :func:`apply_encoding`, by column
name, instead of fitting again on the new file (which would standardise its columns to its own scale, and
feed the model a reordered file's columns in the new order). Both give the transformer's own output:
``(x - mean) / scale`` in float64 after the median fill, one-hot columns in the fitted categories' order,
an unseen category all zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lossbench.errors import DataError


def as_encoded_types(x: pd.DataFrame, numeric: Sequence[str]) -> pd.DataFrame:
    """``x`` with its ``numeric`` columns as float64 (infinities missing) and the others as text (missing
    values NaN): the types the encoder is fitted and applied on."""
    x, numeric = x.copy(), list(numeric)
    if numeric:
        x[numeric] = x[numeric].astype(np.float64).replace([np.inf, -np.inf], np.nan)
    for col in x.columns.difference(numeric, sort=False):
        x[col] = x[col].astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))
    return x


def encoding_of(encoder: ColumnTransformer) -> dict[str, Any]:
    """What the fitted ``encoder`` learned, as JSON: per part, its columns and fitted values."""
    parts = []
    for name, pipeline, columns in encoder.transformers_:
        if name == "remainder":
            continue
        part: dict[str, Any] = {"name": name, "columns": [str(c) for c in columns]}
        for step in getattr(pipeline, "steps", []):
            fitted = step[1]
            if isinstance(fitted, SimpleImputer):
                part["fill"] = [v if isinstance(v, str) else float(v) for v in fitted.statistics_]
            elif isinstance(fitted, StandardScaler):
                part["mean"], part["scale"] = fitted.mean_.tolist(), fitted.scale_.tolist()
            elif isinstance(fitted, OneHotEncoder):
                part["categories"] = [[str(c) for c in cats] for cats in fitted.categories_]
        parts.append(part)
    return {"parts": parts, "features": [str(f) for f in encoder.get_feature_names_out()]}


def apply_encoding(encoding: dict[str, Any], x: pd.DataFrame, where: str) -> np.ndarray:
    """``x`` encoded as the run that wrote ``encoding`` encoded its own table (float32); a
    :class:`~lossbench.errors.DataError` naming the columns ``x`` lacks or cannot give as numbers."""
    wanted = [c for part in encoding["parts"] for c in part["columns"]]
    if missing := [c for c in wanted if c not in x.columns]:
        raise DataError(
            f"{where}: no column {', '.join(repr(c) for c in missing)}, which the tested run's model takes "
            "as features: test on a table with the run's feature columns"
        )
    numeric = [c for part in encoding["parts"] if "categories" not in part for c in part["columns"]]
    try:
        x = as_encoded_types(x[wanted], numeric)
    except (TypeError, ValueError) as err:
        texts = [c for c in numeric if pd.to_numeric(x[c], errors="coerce").isna().gt(x[c].isna()).any()]
        named = f"column(s) {', '.join(repr(c) for c in texts)}" if texts else "a column"
        raise DataError(
            f"{where}: {named} the tested run read as numbers hold(s) text here ({err}): test on a table "
            "whose columns hold what the run's did"
        ) from None
    blocks = []
    for part in encoding["parts"]:
        if "categories" in part:
            values = x[part["columns"]].fillna(dict(zip(part["columns"], part.get("fill", []), strict=False)))
            for col, categories in zip(part["columns"], part["categories"], strict=True):
                column = values[col].to_numpy(dtype=object)[:, None]
                blocks.append((column == np.asarray(categories, dtype=object)[None, :]).astype(np.float64))
            continue
        block = x[part["columns"]].to_numpy(dtype=np.float64)
        if "fill" in part:
            block = np.where(np.isnan(block), np.asarray(part["fill"], dtype=np.float64), block)
        if "mean" in part:
            block = (block - np.asarray(part["mean"])) / np.asarray(part["scale"])
        blocks.append(block)
    if np.isnan(out := np.concatenate(blocks, axis=1)).any():
        raise DataError(f"{where}: missing feature values, which the tested run did not impute")
    return out.astype(np.float32)
