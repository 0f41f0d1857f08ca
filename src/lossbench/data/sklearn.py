"""Data sets bundled with scikit-learn: real data, no download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import datasets

from lossbench.data.base import InMemoryDataModule
from lossbench.errors import ConfigError, check_choice
from lossbench.task import Task

#: name -> (loader, task)
SKLEARN_DATASETS: dict[str, tuple[Callable[..., Any], Task]] = {
    "digits": (datasets.load_digits, Task.CLASSIFICATION),
    "breast_cancer": (datasets.load_breast_cancer, Task.CLASSIFICATION),
    "wine": (datasets.load_wine, Task.CLASSIFICATION),
    "diabetes": (datasets.load_diabetes, Task.REGRESSION),
}


#: data sets whose samples are images: name -> (C, H, W)
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {"digits": (1, 8, 8)}


class SklearnDataModule(InMemoryDataModule):
    """One of scikit-learn's bundled data sets (``digits``: 1,797 8×8 handwritten digits, 10 classes).

    Args:
        name: the data set.
        as_images: give ``digits`` as ``1×8×8`` images (for ``model=cnn``) instead of 64 features.
        **kwargs: :class:`~lossbench.data.base.InMemoryDataModule` arguments.
    """

    def __init__(self, name: str = "digits", as_images: bool = False, **kwargs: Any) -> None:
        self.name = check_choice("data.name", name, tuple(SKLEARN_DATASETS))
        self.task = SKLEARN_DATASETS[name][1]
        if as_images and name not in IMAGE_SHAPES:
            raise ConfigError(
                f"data.as_images=true needs an image data set, but {name} is tabular: choose data=digits "
                "or leave data.as_images=false"
            )
        self.as_images = bool(as_images)
        super().__init__(**kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = SKLEARN_DATASETS[self.name][0](return_X_y=True)
        if self.as_images:
            x = x.reshape(len(x), *IMAGE_SHAPES[self.name])  # per-pixel standardisation keeps this shape
        return x, y
