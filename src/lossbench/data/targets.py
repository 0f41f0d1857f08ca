"""The targets a data set gives, checked for its task before they are split: class indices, 0/1 label
vectors, or float columns. Each check names the data set and the fix."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbench.errors import DataError
from lossbench.task import Task


def class_labels(y: Any, where: str, num_classes: int | None) -> tuple[np.ndarray, int]:
    """Integer class indices in ``[0, C)`` (``C``: ``num_classes``, else the largest label + 1), and ``C``."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise DataError(f"{where}: labels must be a non-empty 1-D array, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) and (
        not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0)
    ):
        raise DataError(f"{where}: labels must be integer class indices, got {y.dtype} values")
    y = y.astype(np.int64)
    lo, hi = int(y.min()), int(y.max())
    c = num_classes if num_classes is not None else hi + 1
    if lo < 0 or hi >= c:
        bad = lo if lo < 0 else hi
        raise DataError(
            f"{where}: label {bad} is outside [0, {c}): labels must be class indices 0..{c - 1}; relabel "
            "the data or set data.num_classes to the true number of classes"
        )
    return y, c


def multilabel_targets(y: Any, where: str) -> tuple[np.ndarray, int]:
    """0/1 label vectors ``[N, L]`` with ``L >= 2`` as float32, and ``L``."""
    y = np.asarray(y)
    if y.ndim != 2 or len(y) == 0 or y.shape[1] < 2:
        raise DataError(
            f"{where}: multi-label targets must be a non-empty [N, L] array with L >= 2 labels, got shape "
            f"{y.shape}"
        )
    if not np.isin(y, (0, 1)).all():
        raise DataError(
            f"{where}: multi-label targets must be 0/1, got values "
            f"{sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}: encode each label as 0 or 1"
        )
    return y.astype(np.float32), y.shape[1]


def checked_targets(task: Task, y: Any, where: str, num_classes: int | None) -> tuple[np.ndarray, int | None]:
    """The targets ``y`` as stored for ``task`` (class indices, 0/1 label vectors or float64 columns
    ``[N, D]``, standardised before they become float32) and the number of classes or labels (None for
    regression)."""
    if task is Task.CLASSIFICATION:
        return class_labels(y, where, num_classes)
    if task is Task.MULTILABEL:
        return multilabel_targets(y, where)
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1), None
