"""Synthetic data sets with every property under control: generated from ``data_seed`` alone."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import datasets

from lossbench.data.base import InMemoryDataModule
from lossbench.data.stressors import label_imbalance_rows
from lossbench.errors import DataError, check_choice, check_range
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
        noise: standard deviation of the Gaussian noise ε (before any outliers): for ``linear``, in units
            of the signal X·w's standard deviation (which is scaled to 1, so ``noise`` is 1/SNR and losses'
            scale parameters mean the same for every ``data_seed``); for ``nonlinear``, in Friedman #1's
            own units (its signal's standard deviation is about 5).
        noise_growth: heteroscedastic noise: ε's standard deviation grows linearly along the first
            feature, from ``noise`` at its smallest value to ``noise · (1 + noise_growth)`` at its largest
            (``u`` = the feature's rank in ``[0, 1]``: ``sd = noise · (1 + noise_growth · u)``); 0: constant.
        **kwargs: :class:`InMemoryDataModule` arguments (splits, stressors, loader).
    """

    name = "regression"

    def __init__(
        self,
        target: str = "linear",
        n_samples: int = 2000,
        n_features: int = 10,
        noise: float = 1.0,
        noise_growth: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.target = check_choice("data.target", target, REGRESSION_TARGETS)
        self.n_samples = int(check_range("data.n_samples", n_samples, 10))
        self.n_features = int(check_range("data.n_features", n_features, 5 if target == "nonlinear" else 1))
        self.noise = check_range("data.noise", noise, 0.0)
        self.noise_growth = check_range("data.noise_growth", noise_growth, 0.0)
        self.task = Task.REGRESSION
        super().__init__(**kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        noise = 0.0 if self.noise_growth > 0 else self.noise  # heteroscedastic noise is added below
        if self.target == "linear":  # the signal X·w at unit standard deviation, then the noise
            x, y = datasets.make_regression(
                n_samples=self.n_samples,
                n_features=self.n_features,
                n_informative=self.n_features,
                random_state=self.data_seed,
            )
            y = y / np.std(y)
            if noise > 0:
                y = y + noise * np.random.default_rng([int(self.data_seed), 4]).standard_normal(len(y))
        else:
            x, y = datasets.make_friedman1(
                n_samples=self.n_samples, n_features=self.n_features, noise=noise, random_state=self.data_seed
            )
        if self.noise_growth > 0:
            u = np.argsort(np.argsort(x[:, 0])) / max(len(x) - 1, 1)
            rng = np.random.default_rng([int(self.data_seed), 5])
            y = y + rng.standard_normal(len(y)) * self.noise * (1.0 + self.noise_growth * u)
        return x, y


class SyntheticMultilabelDataModule(InMemoryDataModule):
    """Multi-label samples from scikit-learn's ``make_multilabel_classification`` (a bag-of-words model).

    Each sample draws its number of labels from a Poisson distribution (mean ``avg_labels``, at least
    one), its labels from label priors drawn at random, and its features as word counts from the labels'
    word distributions. ``label_skew`` makes the label frequencies long-tailed in the whole data set
    (every split): the generated pool is subsampled as the per-label imbalance stressor does
    (:func:`~lossbench.data.stressors.label_imbalance_rows`), so labels keep their feature distribution
    while rare labels become rarer. The training-only stressors are ``imbalance_factor`` (per label) and
    ``missing_positives``.

    Args:
        n_samples, n_features: size of the data set (``n_samples`` after the skew's subsampling).
        n_labels: labels ``L``.
        avg_labels: mean labels per sample (an int, as scikit-learn takes it).
        label_skew: ≥ 1, the long-tail factor of the label frequencies; 1: as generated.
        **kwargs: :class:`InMemoryDataModule` arguments (splits, stressors, loader).
    """

    name = "multilabel"

    def __init__(
        self,
        n_samples: int = 3000,
        n_features: int = 40,
        n_labels: int = 10,
        avg_labels: int = 2,
        label_skew: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self.n_samples = int(check_range("data.n_samples", n_samples, 10))
        self.n_features = int(check_range("data.n_features", n_features, 1))
        self.n_labels = int(check_range("data.n_labels", n_labels, 2))
        self.avg_labels = int(check_range("data.avg_labels", avg_labels, 1))
        self.label_skew = check_range("data.label_skew", label_skew, 1.0)
        self.task = Task.MULTILABEL
        super().__init__(**kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        for factor in (1,) if self.label_skew == 1.0 else (4, 16, 64):  # a pool large enough for the skew
            x, y = datasets.make_multilabel_classification(
                n_samples=factor * self.n_samples,
                n_features=self.n_features,
                n_classes=self.n_labels,
                n_labels=self.avg_labels,
                allow_unlabeled=False,
                random_state=self.data_seed,
            )
            if self.label_skew == 1.0:
                return x.astype(np.float32), y
            rng = np.random.default_rng([int(self.data_seed), 6])
            kept = label_imbalance_rows(y, self.label_skew, rng)
            if len(kept) >= self.n_samples:
                kept = np.sort(rng.permutation(kept)[: self.n_samples])
                return x[kept].astype(np.float32), y[kept]
        raise DataError(
            f"data.label_skew={self.label_skew:g} keeps {len(kept)} of {len(y)} generated samples, fewer "
            f"than data.n_samples={self.n_samples}: lower data.label_skew or data.n_samples"
        )
