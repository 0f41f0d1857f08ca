"""Synthetic data sets with every property under control: generated from ``data_seed`` alone."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import datasets

from lossbench.data.base import InMemoryDataModule
from lossbench.errors import check_choice, check_range
from lossbench.task import Task

REGRESSION_TARGETS = ("linear", "nonlinear")


class SyntheticClassificationDataModule(InMemoryDataModule):
    """Gaussian clusters per class (scikit-learn's ``make_classification``), balanced when generated.

    Imbalance, label noise etc. come from the shared stressors (``imbalance_factor``, ``label_noise``)
    so the validation and test splits stay balanced and clean.

    Args:
        n_samples, n_features, n_informative, n_classes, n_clusters_per_class, class_sep: as in
            ``sklearn.datasets.make_classification`` (no label flips: ``flip_y=0``).
        **kwargs: :class:`InMemoryDataModule` arguments (splits, stressors, loader).
    """

    name = "blobs"

    def __init__(
        self,
        n_samples: int = 6000,
        n_features: int = 20,
        n_informative: int = 10,
        n_classes: int = 10,
        n_clusters_per_class: int = 1,
        class_sep: float = 1.5,
        **kwargs: Any,
    ) -> None:
        self.n_samples = int(check_range("data.n_samples", n_samples, 10))
        self.n_features = int(check_range("data.n_features", n_features, 1))
        self.n_informative = int(check_range("data.n_informative", n_informative, 1, n_features))
        self.n_classes = int(check_range("data.n_classes", n_classes, 2))
        self.n_clusters_per_class = int(check_range("data.n_clusters_per_class", n_clusters_per_class, 1))
        self.class_sep = check_range("data.class_sep", class_sep, 0.0, low_inclusive=False)
        self.task = Task.CLASSIFICATION
        if kwargs.get("num_classes") is None:
            kwargs["num_classes"] = self.n_classes
        super().__init__(**kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return datasets.make_classification(
            n_samples=self.n_samples,
            n_features=self.n_features,
            n_informative=self.n_informative,
            n_redundant=0,
            n_classes=self.n_classes,
            n_clusters_per_class=self.n_clusters_per_class,
            class_sep=self.class_sep,
            flip_y=0.0,
            random_state=self.data_seed,
        )


class SyntheticRegressionDataModule(InMemoryDataModule):
    """A regression target of known form; contamination comes from ``outlier_fraction``/``outlier_scale``.

    Args:
        target: ``linear`` (``make_regression``: y = X·w + ε) or ``nonlinear`` (Friedman #1:
            10 sin(π x₁x₂) + 20 (x₃ − ½)² + 10 x₄ + 5 x₅ + ε, further features are irrelevant).
        n_samples, n_features: size of the data set.
        noise: standard deviation of the Gaussian noise ε (before any outliers).
        **kwargs: :class:`InMemoryDataModule` arguments (splits, stressors, loader).
    """

    name = "regression"

    def __init__(
        self,
        target: str = "linear",
        n_samples: int = 2000,
        n_features: int = 10,
        noise: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.target = check_choice("data.target", target, REGRESSION_TARGETS)
        self.n_samples = int(check_range("data.n_samples", n_samples, 10))
        self.n_features = int(check_range("data.n_features", n_features, 5 if target == "nonlinear" else 1))
        self.noise = check_range("data.noise", noise, 0.0)
        self.task = Task.REGRESSION
        super().__init__(**kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.target == "linear":
            x, y = datasets.make_regression(
                n_samples=self.n_samples,
                n_features=self.n_features,
                n_informative=self.n_features,
                noise=self.noise,
                random_state=self.data_seed,
            )
            y = y / np.std(y)  # unit scale, so losses' hyper-parameters (δ) mean the same across seeds
        else:
            x, y = datasets.make_friedman1(
                n_samples=self.n_samples,
                n_features=self.n_features,
                noise=self.noise,
                random_state=self.data_seed,
            )
        return x, y
