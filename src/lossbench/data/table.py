"""A user's own table — CSV/TSV, Parquet or NumPy ``.npz`` — as an in-memory data set.

``python train.py data=table data.path=my.csv data.target=label``. The file is read with pandas (pyarrow
for Parquet) and checked as a whole first (:mod:`lossbench.data.table_checks`): every problem — absent
columns, missing values, columns that cannot be encoded, an unusable target — is named in one error that
ends with the overrides fixing them all. The task follows from the target unless ``data.task`` sets it:
text, boolean or integer labels → classification (the sorted distinct labels become class indices
``0..C-1``, a map kept in ``metrics.json`` and ``labels.json``), floats or integers with too many distinct
values to be classes → regression, several 0/1 (integer or boolean) target columns → multi-label
classification (one label per column), other several target columns → multi-target regression. The file's
row index (``Unnamed: 0``, or an ``id``/``index``/``rownames`` column counting the rows) is dropped with a
note. Feature columns are encoded with a scikit-learn ``ColumnTransformer`` fitted on the training split
only: numeric columns standardised (``data.standardize``), text/categorical/boolean columns one-hot encoded
(categories unseen in training encode as all zeros). Missing or infinite feature values are an error unless
``data.impute=median`` (numeric: the training median; categorical: the most frequent training value); rows
without a target are an error unless ``data.drop_missing_target=true`` drops them. ``data.split_column``
names a column of ``train``/``val``/``test`` labels to use instead of the stratified ``data_seed`` split;
stressors then apply as for every in-memory set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightning.pytorch.utilities import rank_zero_only
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lossbench.data.base import InMemoryDataModule
from lossbench.data.table_checks import SPLIT_NAMES, TableOptions, check_table_file
from lossbench.data.table_encoding import apply_encoding, as_encoded_types, encoding_of
from lossbench.data.table_features import numeric_columns
from lossbench.data.table_problems import plain
from lossbench.errors import DataError
from lossbench.task import Task

log = logging.getLogger("lossbench")


class TableDataModule(InMemoryDataModule):
    """A table file: feature columns → encoded floats; target column(s) → class indices or values.

    Args:
        path: the file (``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.npz``; ``.gz`` for CSV/TSV).
        target: the target column, or a list of columns (multi-label or multi-target regression).
        task: ``classification``, ``multilabel`` or ``regression``; ``None``: inferred from the target.
        drop: columns that are not features (ids, leaks).
        split_column: a column of ``train``/``val``/``test`` labels that fixes the split.
        impute: ``none`` (missing feature values are an error) or ``median``.
        na_values: text that marks a missing value (e.g. ``["?", "NA"]``).
        drop_missing_target: drop the rows without a target (their number is in :meth:`describe`);
            ``False``: they are an error.
        sep: the field separator of a CSV/TSV file; ``None``: ``,`` for ``.csv``, a tab for ``.tsv``.
        decimal: the decimal mark of a CSV/TSV file's numbers, ``.`` or ``,`` (``3,5``).
        encoding: the text encoding of a CSV/TSV file (``utf-8``; ``cp1252``, ``latin-1``, ...).
        thousands: the thousands separator of a CSV/TSV file's numbers (``,`` in ``73,073``); ``None``: none.
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
        drop_missing_target: bool = False,
        sep: str | None = None,
        decimal: str = ".",
        encoding: str = "utf-8",
        thousands: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.path = Path(str(path)).expanduser()
        self.name = self.path.name
        options = TableOptions.from_config(
            target,
            task,
            drop,
            split_column,
            impute,
            na_values,
            drop_missing_target,
            sep,
            decimal,
            encoding,
            thousands,
        )
        self.targets, self.requested_task = list(options.target), options.task
        self.drop, self.split_column, self.impute = list(options.drop), options.split_column, options.impute
        self.na_values, self.drop_missing_target = list(options.na_values), options.drop_missing_target
        self.sep, self.decimal, self.encoding = options.sep, options.decimal, options.encoding
        self.thousands = options.thousands
        self.index_columns: list[str] = []
        self.missing_target_rows = 0
        self.label_names: list[Any] | None = None
        self.encoder: ColumnTransformer | None = None
        self._given_split: np.ndarray | None = None
        super().__init__(**kwargs)

    @property
    def display_name(self) -> str:
        return f"table {self.path}"

    @property
    def options(self) -> TableOptions:
        """The options that decide how the table is read (for :func:`.table_checks.check_table`)."""
        return TableOptions(
            target=tuple(self.targets),
            task=self.requested_task,
            drop=tuple(self.drop),
            split_column=self.split_column,
            impute=self.impute,
            na_values=tuple(self.na_values),
            drop_missing_target=self.drop_missing_target,
            sep=self.sep,
            decimal=self.decimal,
            encoding=self.encoding,
            thousands=self.thousands,
        )

    # --- reading ------------------------------------------------------------------------------------
    def load_arrays(self) -> tuple[pd.DataFrame, np.ndarray]:
        checked = check_table_file(self.path, self.options)
        self.task = checked.task
        self._given_split = checked.split
        self.index_columns = checked.index_columns
        self.missing_target_rows = checked.missing_target_rows
        return checked.features, self._encode_target(checked.target)

    def _encode_target(self, target: pd.DataFrame) -> np.ndarray:
        """Class indices ``0..C-1`` of the sorted labels, 0/1 label columns, or float values."""
        if self.task is Task.CLASSIFICATION:
            codes, uniques = pd.factorize(target.iloc[:, 0], sort=True)
            self.label_names = [plain(v) for v in uniques]
            self.declared_num_classes = len(uniques)
            return codes.astype(np.int64)
        if self.task is Task.MULTILABEL:
            self.label_names = list(self.targets)
            return target.astype(object).replace({True: 1, False: 0}).to_numpy(dtype=np.float32)
        return target.apply(pd.to_numeric).to_numpy(dtype=np.float64)  # float32 after standardising

    def split_indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``data.split_column``'s split, or the stratified one; classes too small for it name
        ``data.task=regression`` when the labels are numbers."""
        if self._given_split is not None:
            train, val, test = (np.flatnonzero(self._given_split == name) for name in SPLIT_NAMES)
            if self.task is Task.CLASSIFICATION and self.label_names is not None:
                absent = sorted(set(range(len(self.label_names))) - set(np.unique(y[train]).tolist()))
                if absent and rank_zero_only.rank == 0:  # once, not once per DDP process
                    log.warning(
                        "%s: class(es) %s have no training row in data.split_column=%s: the model never "
                        "learns them, and losses built on class counts see a count of 0",
                        self.display_name,
                        ", ".join(repr(self.label_names[c]) for c in absent),
                        self.split_column,
                    )
            return train, val, test
        try:
            return super().split_indices(y)
        except DataError as err:
            numbers = self.label_names is not None and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.label_names
            )
            if self.task is not Task.CLASSIFICATION or not numbers:
                raise
            raise DataError(
                f"{err}; or, if {self.targets[0]!r} is a quantity rather than classes, set "
                "data.task=regression"
            ) from None

    def preprocess(self, x: pd.DataFrame, train: np.ndarray) -> np.ndarray:
        """Encode the features with a ``ColumnTransformer`` fitted on the training rows ``train``; with a
        tested run's encoding (:attr:`fitted`, ``lossbench-eval``), with that one, by column name."""
        if "encoding" in self.fitted:
            return apply_encoding(self.fitted["encoding"], x, f"data {self.display_name}")
        numeric = numeric_columns(x)
        categorical = [c for c in x.columns if c not in numeric]
        x = as_encoded_types(x, numeric)  # one type per column: numbers, or text with NaN where missing
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
        if self.index_columns:
            info["index_columns_dropped"] = self.index_columns
        if self.drop_missing_target:
            info["missing_target_rows_dropped"] = self.missing_target_rows
        if self.label_names is not None:
            info["labels"] = self.label_names
        if self.encoder is not None:
            info["encoding"] = encoding_of(self.encoder)
            info["features"] = info["encoding"]["features"]
        elif "encoding" in self.fitted:
            info["features"] = self.fitted["encoding"]["features"]
        return info
