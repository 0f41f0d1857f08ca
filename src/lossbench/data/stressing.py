"""The stressors of a data module, validated once and applied one way to its training split.

:class:`Stressors` holds the ``data.*`` stressor options (see :mod:`.stressors` for what each does); every
data module builds one in its constructor (so a bad value fails before any data is read) and calls
:meth:`Stressors.apply` on its training split after the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench.data import stressors as st
from lossbench.errors import ConfigError, check_choice, check_range
from lossbench.task import Task


@dataclass(frozen=True)
class Stressors:
    """Training-split stressors, seeded by ``data_seed``.

    Args:
        imbalance_factor: ``n_max / n_min`` of the long-tailed training profile (per label for
            multi-label); 1: unchanged.
        label_noise: share of training labels corrupted (classification), in ``[0, 1)``.
        noise_type: ``symmetric`` or ``asymmetric`` (``c → c+1 mod C``).
        outlier_fraction: share of training targets contaminated (regression), in ``[0, 1)``.
        outlier_scale: outlier shift in standard deviations of the training targets.
        missing_positives: share of each label's training positives set to 0 (multi-label), in ``[0, 1)``.
        data_seed: seeds every stressor.
    """

    imbalance_factor: float = 1.0
    label_noise: float = 0.0
    noise_type: str = "symmetric"
    outlier_fraction: float = 0.0
    outlier_scale: float = 10.0
    missing_positives: float = 0.0
    data_seed: int = 0

    def __post_init__(self) -> None:
        check_range("data.imbalance_factor", self.imbalance_factor, 1.0)
        check_range("data.label_noise", self.label_noise, 0.0, 1.0, high_inclusive=False)
        check_choice("data.noise_type", self.noise_type, st.NOISE_TYPES)
        check_range("data.outlier_fraction", self.outlier_fraction, 0.0, 1.0, high_inclusive=False)
        check_range("data.outlier_scale", self.outlier_scale, 0.0, low_inclusive=False)
        check_range("data.missing_positives", self.missing_positives, 0.0, 1.0, high_inclusive=False)

    def apply(
        self, task: Task, num_classes: int | None, train: np.ndarray, y: np.ndarray, name: str
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], np.ndarray | None]:
        """The stressors on the training indices ``train`` of targets ``y`` of the data set ``name``.

        A stressor the task cannot take is a :class:`ConfigError` naming the one it can. Returns the kept
        training indices, their observed targets, what was done (for ``metrics.json``) and, when labels
        were corrupted, the clean labels of the kept indices.
        """
        self.check_task(task, name)
        if task is Task.MULTILABEL:
            train, y_train, info = st.stress_multilabel(
                train, y, self.imbalance_factor, self.missing_positives, self.data_seed
            )
            return train, y_train, info, None
        if task is Task.CLASSIFICATION:
            return st.stress_labels(
                train,
                y,
                num_classes,
                self.imbalance_factor,
                self.label_noise,
                self.noise_type,
                self.data_seed,
            )
        y_train, info = y[train], {}
        if self.outlier_fraction > 0.0:
            rng = st.stream(self.data_seed, st.STREAM_OUTLIERS)
            y_train, rows = st.contaminate_targets(y_train, self.outlier_fraction, self.outlier_scale, rng)
            info.update(n_outliers=len(rows), outlier_scale=self.outlier_scale)
        return train, y_train, info, None

    def check_task(self, task: Task, name: str) -> None:
        """A :class:`ConfigError` when a stressor is set that ``task`` cannot take."""
        if task is not Task.MULTILABEL and self.missing_positives > 0.0:
            raise ConfigError(
                f"data.missing_positives drops positive labels of a multi-label data set, but {name} is a "
                f"{task.value} data set: use data.label_noise (classification) or data.outlier_fraction "
                "(regression)"
            )
        if task is Task.MULTILABEL and (self.outlier_fraction > 0.0 or self.label_noise > 0.0):
            raise ConfigError(
                f"{name} is a multi-label data set: its stressors are data.imbalance_factor (per label) and "
                "data.missing_positives, not data.label_noise or data.outlier_fraction"
            )
        if task is Task.CLASSIFICATION and self.outlier_fraction > 0.0:
            raise ConfigError(
                f"data.outlier_fraction contaminates regression targets, but {name} is a classification "
                "data set: use data.label_noise instead"
            )
        if task is Task.REGRESSION and (self.imbalance_factor > 1.0 or self.label_noise > 0.0):
            raise ConfigError(
                "data.imbalance_factor and data.label_noise need class labels, but "
                f"{name} is a regression data set: use data.outlier_fraction instead"
            )
