"""Data sets bundled with scikit-learn: real data, no download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import datasets

from lossbench.data.base import InMemoryDataModule
from lossbench.errors import check_choice
from lossbench.losses.base import Task

#: name -> (loader, task)
SKLEARN_DATASETS: dict[str, tuple[Callable[..., Any], Task]] = {
    "digits": (datasets.load_digits, Task.CLASSIFICATION),
    "breast_cancer": (datasets.load_breast_cancer, Task.CLASSIFICATION),
    "wine": (datasets.load_wine, Task.CLASSIFICATION),
    "iris": (datasets.load_iris, Task.CLASSIFICATION),
    "diabetes": (datasets.load_diabetes, Task.REGRESSION),
}


class SklearnDataModule(InMemoryDataModule):
    """One of scikit-learn's bundled data sets (``digits``: 1,797 8×8 handwritten digits, 10 classes)."""

    def __init__(self, name: str = "digits", **kwargs: Any) -> None:
        self.name = check_choice("data.name", name, tuple(SKLEARN_DATASETS))
        self.task = SKLEARN_DATASETS[name][1]
        super().__init__(**kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = SKLEARN_DATASETS[self.name][0](return_X_y=True)
        return x, y
