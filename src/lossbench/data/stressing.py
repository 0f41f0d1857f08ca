"""The stressors a data set's task allows, applied to its training split (see :mod:`.stressors`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbench.data import stressors as st
from lossbench.errors import ConfigError
from lossbench.task import Task


def stress_training_split(
    dm: Any, train: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], np.ndarray | None]:
    """The stressors ``dm`` is configured with, on the training indices ``train`` of targets ``y``.

    ``dm`` is an in-memory data module (its ``task``, ``imbalance_factor``, ``label_noise``, ``noise_type``,
    ``outlier_fraction``, ``outlier_scale``, ``missing_positives`` and ``data_seed``). A stressor the task
    cannot take is a :class:`ConfigError` naming the one it can. Returns the kept training indices, their
    observed targets, what was done (for ``metrics.json``) and, when labels were corrupted, the clean
    labels of the kept indices.
    """
    task, name = dm.task, dm.display_name
    if task is not Task.MULTILABEL and dm.missing_positives > 0.0:
        raise ConfigError(
            f"data.missing_positives drops positive labels of a multi-label data set, but {name} is a "
            f"{task.value} data set: use data.label_noise (classification) or data.outlier_fraction "
            "(regression)"
        )
    if task is Task.MULTILABEL:
        if dm.outlier_fraction > 0.0 or dm.label_noise > 0.0:
            raise ConfigError(
                f"{name} is a multi-label data set: its stressors are data.imbalance_factor (per label) and "
                "data.missing_positives, not data.label_noise or data.outlier_fraction"
            )
        train, y_train, info = st.stress_multilabel(
            train, y, dm.imbalance_factor, dm.missing_positives, dm.data_seed
        )
        return train, y_train, info, None
    if task is Task.CLASSIFICATION:
        if dm.outlier_fraction > 0.0:
            raise ConfigError(
                f"data.outlier_fraction contaminates regression targets, but {name} is a classification "
                "data set: use data.label_noise instead"
            )
        return st.stress_labels(
            train, y, dm.num_classes, dm.imbalance_factor, dm.label_noise, dm.noise_type, dm.data_seed
        )
    if dm.imbalance_factor > 1.0 or dm.label_noise > 0.0:
        raise ConfigError(
            "data.imbalance_factor and data.label_noise need class labels, but "
            f"{name} is a regression data set: use data.outlier_fraction instead"
        )
    y_train, info = y[train], {}
    if dm.outlier_fraction > 0.0:
        rng = st.stream(dm.data_seed, st.STREAM_OUTLIERS)
        y_train, rows = st.contaminate_targets(y_train, dm.outlier_fraction, dm.outlier_scale, rng)
        info.update(n_outliers=len(rows), outlier_scale=dm.outlier_scale)
    return train, y_train, info, None
