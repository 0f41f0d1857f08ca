"""A user's own table — CSV/TSV, Parquet or NumPy ``.npz`` — as an in-memory data set.

``python train.py data=table data.path=my.csv data.target=label``. The file is read with pandas (pyarrow
for Parquet); the task follows from the target unless ``data.task`` sets it: integer, boolean or text labels
→ classification (the sorted distinct labels become class indices ``0..C-1``, a map kept in
``metrics.json`` and ``labels.json``), floats → regression, several 0/1 (integer or boolean) target columns →
multi-label classification (one label per column), other several target columns → multi-target
regression. Feature columns are encoded with a scikit-learn ``ColumnTransformer`` fitted on the training
split only: numeric columns standardised (``data.standardize``), text/categorical/boolean columns one-hot
encoded (categories unseen in training encode as all zeros). Missing or infinite values are an error naming
the column, unless ``data.impute=median`` (numeric: the training median; categorical: the most frequent
training value). ``data.split_column`` names a column of ``train``/``val``/``test`` labels to use instead of
the stratified ``data_seed`` split; stressors then apply as for every in-memory set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lossbench.data.base import InMemoryDataModule
from lossbench.data.table_io import read_table
from lossbench.errors import ConfigError, DataError, check_choice
from lossbench.task import Task

SPLIT_NAMES = ("train", "val", "test")
IMPUTE = ("none", "median")


def is_binary(column: pd.Series) -> bool:
    """An integer or boolean column holding only 0 and 1 (a label of a multi-label target)."""
    types = pd.api.types
    return (types.is_integer_dtype(column) or types.is_bool_dtype(column)) and set(column.unique()) <= {0, 1}


class TableDataModule(InMemoryDataModule):
    """A table file: feature columns → encoded floats; target column(s) → class indices or values.

    Args:
        path: the file (``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.npz``; ``.gz`` for CSV/TSV).
        target: the target column, or a list of columns (multi-label or multi-target regression).
        task: ``classification``, ``multilabel`` or ``regression``; ``None``: inferred from the target.
        drop: columns that are not features (ids, leaks).
        split_column: a column of ``train``/``val``/``test`` labels that fixes the split.
        impute: ``none`` (missing values are an error) or ``median``.
        **kwargs: :class:`~lossbench.data.base.InMemoryDataModule` arguments (splits, stressors, loader).
    """

    def __init__(
        self,
        path: str,
        target: str | Sequence[str],
        task: str | None = None,
        drop: Sequence[str] = (),
        split_column: str | None = None,
        impute: str = "none",
        na_values: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.path = Path(str(path)).expanduser()
        self.name = self.path.name
        self.targets = [target] if isinstance(target, str) else [str(t) for t in target]
        if not self.targets:
            raise ConfigError("data.target is empty: name the target column (data.target=label)")
        self.requested_task = (
            None if task is None else Task(check_choice("data.task", task, [t.value for t in Task]))
        )
        self.drop = [str(c) for c in (drop or ())]
        self.split_column = split_column
        self.impute = check_choice("data.impute", "none" if impute is None else str(impute), IMPUTE)
        self.na_values = [str(v) for v in (na_values or ())]
        self.label_names: list[Any] | None = None
        self.encoder: ColumnTransformer | None = None
        self._given_split: np.ndarray | None = None
        super().__init__(**kwargs)

    @property
    def display_name(self) -> str:
        return f"table {self.path}"

    # --- reading ------------------------------------------------------------------------------------
    def load_arrays(self) -> tuple[pd.DataFrame, np.ndarray]:
        frame = read_table(self.path, self.na_values)
        named = [*self.targets, *self.drop, *([self.split_column] if self.split_column else [])]
        absent = [c for c in named if c not in frame.columns]
        if absent:
            key = (
                "data.target"
                if absent[0] in self.targets
                else ("data.drop" if absent[0] in self.drop else "data.split_column")
            )
            raise DataError(
                f"{key}: column {absent[0]!r} is not in {self.path}; its columns are "
                f"{', '.join(map(str, frame.columns))}"
            )
        if self.split_column:
            self._given_split = self._read_split(frame[self.split_column])
        target = frame[self.targets]
        features = frame.drop(columns=list(dict.fromkeys(named)))
        if features.shape[1] == 0:
            raise DataError(f"{self.display_name}: no feature columns left after the target and data.drop")
        self.task = self.requested_task or self._infer_task(target)
        y = self._encode_target(target)
        self._check_features(features)
        return features, y

    def _read_split(self, column: pd.Series) -> np.ndarray:
        values = column.astype(str).str.strip().str.lower().to_numpy()
        bad = sorted(set(values) - set(SPLIT_NAMES))
        if bad:
            raise DataError(
                f"data.split_column={self.split_column} holds {bad[:5]}: its values must be train, val "
                "or test"
            )
        for name in SPLIT_NAMES:
            if not np.any(values == name):
                raise DataError(
                    f"data.split_column={self.split_column} has no {name!r} rows: label some rows {name}"
                )
        return values

    def _infer_task(self, target: pd.DataFrame) -> Task:
        if len(self.targets) > 1:
            binary = all(is_binary(column) for _, column in target.items())
            return Task.MULTILABEL if binary else Task.REGRESSION
        col = target.iloc[:, 0]
        if pd.api.types.is_float_dtype(col):
            return Task.REGRESSION
        distinct = col.nunique()
        if pd.api.types.is_integer_dtype(col) and distinct > max(20, len(col) // 5):
            raise DataError(
                f"{self.display_name}: target {self.targets[0]!r} has {distinct} distinct integer values in "
                f"{len(col)} rows: set data.task=regression for a numeric target, or "
                f"data.task=classification to keep {distinct} classes"
            )
        return Task.CLASSIFICATION

    def _encode_target(self, target: pd.DataFrame) -> np.ndarray:
        bad = target.isna().sum()
        if bad.any():
            col = bad.idxmax()
            raise DataError(
                f"{self.display_name}: target column {col!r} has {int(bad[col])} missing values: drop those "
                "rows from the file (a target cannot be imputed)"
            )
        if self.task is Task.CLASSIFICATION:
            if len(self.targets) > 1:
                raise ConfigError("data.task=classification takes one target column: data.target=<column>")
            codes, uniques = pd.factorize(target.iloc[:, 0], sort=True)
            if len(uniques) < 2:
                raise DataError(
                    f"{self.display_name}: target {self.targets[0]!r} has a single class ({uniques[0]!r}): "
                    "classification needs at least two; is data.target the right column?"
                )
            self.label_names = [v.item() if hasattr(v, "item") else v for v in uniques]
            self.declared_num_classes = len(uniques)
            return codes.astype(np.int64)
        if self.task is Task.MULTILABEL:
            return self._encode_labels(target)
        numeric = target.apply(pd.to_numeric, errors="coerce")
        if numeric.isna().any().any():
            col = numeric.isna().sum().idxmax()
            raise DataError(
                f"{self.display_name}: target column {col!r} is not numeric, so it cannot be regressed: use "
                "data.task=classification, or fix the column"
            )
        values = numeric.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            col = numeric.columns[int(np.argmax(~np.isfinite(values).all(axis=0)))]
            raise DataError(
                f"{self.display_name}: target column {col!r} has infinite values: drop those rows"
            )
        return values.astype(np.float32)

    def _encode_labels(self, target: pd.DataFrame) -> np.ndarray:
        """Multi-label targets: one 0/1 (or boolean) column per label."""
        if len(self.targets) < 2:
            raise ConfigError(
                "data.task=multilabel takes one 0/1 target column per label: data.target=[label_a,label_b]"
            )
        for col, values in target.items():
            numeric = pd.to_numeric(values.astype(object).replace({True: 1, False: 0}), errors="coerce")
            if not numeric.isin((0, 1)).all():
                bad = sorted({str(v) for v in values[~numeric.isin((0, 1))]})[:5]
                raise DataError(
                    f"{self.display_name}: multi-label target column {col!r} holds {bad}: each label "
                    "column must be 0/1 (or true/false)"
                )
        self.label_names = list(self.targets)
        return target.astype(object).replace({True: 1, False: 0}).to_numpy(dtype=np.float32)

    # --- features -----------------------------------------------------------------------------------
    def _numeric(self, features: pd.DataFrame) -> list[str]:
        return [
            c
            for c in features.columns
            if pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])
        ]

    def _check_features(self, features: pd.DataFrame) -> None:
        numeric = set(self._numeric(features))
        for col in features.columns:
            series = features[col]
            if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
                raise DataError(
                    f"{self.display_name}: column {col!r} holds dates/times, which cannot be encoded: "
                    f"convert it to numbers in the file, or drop it with data.drop=[{col}]"
                )
            if col in numeric:
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                missing = int((~np.isfinite(values)).sum())
                row_id = pd.api.types.is_integer_dtype(series) and len(series) > 20 and series.is_unique
                if row_id and values.max() - values.min() == len(series) - 1:
                    raise DataError(
                        f"{self.display_name}: column {col!r} numbers the rows (consecutive distinct "
                        f"integers), a row id that can leak the file's order: drop it with data.drop=[{col}]"
                    )
            else:
                present = series.dropna()
                parsed = pd.to_numeric(present.astype(str), errors="coerce")
                if len(present) and parsed.notna().mean() >= 0.9:
                    tokens = sorted({str(v) for v in present[parsed.isna()]})[:5]
                    raise DataError(
                        f"{self.display_name}: column {col!r} holds numbers and the text values {tokens}: if "
                        f"they mark missing values set data.na_values={tokens} (with data.impute=median to "
                        "fill them), otherwise fix the numbers in the file"
                    )
                kinds = {type(v) for v in series.dropna()}
                if len(kinds - {str}) and len(kinds) > 1:
                    raise DataError(
                        f"{self.display_name}: column {col!r} mixes {sorted(k.__name__ for k in kinds)} "
                        f"values, which cannot be encoded: make it one type in the file, or data.drop=[{col}]"
                    )
                distinct = series.nunique()
                if distinct == len(series) and len(series) > 20:
                    raise DataError(
                        f"{self.display_name}: column {col!r} has a distinct text value in every row (an "
                        f"id?), which one-hot encoding cannot generalise from: drop it with data.drop=[{col}]"
                    )
                missing = int(series.isna().sum())
            if missing and self.impute == "none":
                raise DataError(
                    f"{self.display_name}: feature column {col!r} has {missing} missing or infinite values: "
                    f"fill them in the file, drop the column (data.drop=[{col}]), or set data.impute=median"
                )

    def split_indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._given_split is None:
            return super().split_indices(y)
        return tuple(np.flatnonzero(self._given_split == name) for name in SPLIT_NAMES)

    def preprocess(self, x: pd.DataFrame, train: np.ndarray) -> np.ndarray:
        """Encode the features with a ``ColumnTransformer`` fitted on the training rows ``train``."""
        numeric = self._numeric(x)
        categorical = [c for c in x.columns if c not in numeric]
        x = x.copy()
        if numeric:
            x[numeric] = x[numeric].astype(np.float64).replace([np.inf, -np.inf], np.nan)
        for col in categorical:  # one type per column: text, missing values as NaN
            x[col] = x[col].astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))
        num_steps = [StandardScaler()] if self.standardize else []
        cat_steps: list[Any] = [OneHotEncoder(handle_unknown="ignore", sparse_output=False)]
        if self.impute == "median":
            num_steps.insert(0, SimpleImputer(strategy="median"))
            cat_steps.insert(0, SimpleImputer(strategy="most_frequent"))
        parts = []
        if numeric:
            parts.append(("numeric", make_pipeline(*num_steps) if num_steps else "passthrough", numeric))
        if categorical:
            parts.append(("categorical", make_pipeline(*cat_steps), categorical))
        self.encoder = ColumnTransformer(parts, sparse_threshold=0.0)
        self.encoder.fit(x.iloc[train])
        return np.asarray(self.encoder.transform(x), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(path=str(self.path), targets=self.targets)
        if self.label_names is not None:
            info["labels"] = self.label_names
        if self.encoder is not None:
            info["features"] = [str(f) for f in self.encoder.get_feature_names_out()]
        return info
