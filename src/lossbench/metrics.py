"""Task metrics, computed identically for every loss from its probabilities and predictions."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, R2Score
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MulticlassRecall,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
)

if TYPE_CHECKING:
    from lossbench.losses.base import Predictive


class NegativeLogLikelihood(Metric):
    r"""Mean negative log-likelihood of the targets, :math:`-\frac1N\sum_i \log p_{i,y_i}`.

    Takes probabilities ``[N, C]``; each probability is floored at 1e-12 so a confident mistake costs
    at most ≈27.6 nats instead of infinity.
    """

    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        p = probs.gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
        self.total += -torch.log(p.double().clamp_min(1e-12)).sum()
        self.count += target.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


def classification_metrics(num_classes: int) -> tuple[MetricCollection, MetricCollection]:
    """Metrics on predicted labels, and metrics on probabilities.

    Labels: accuracy, balanced accuracy (macro recall), macro-F1. Probabilities: NLL and expected
    calibration error (15 equal-width bins, L1).
    """
    labels = MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "bal_acc": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        }
    )
    probs = MetricCollection(
        {"nll": NegativeLogLikelihood(), "ece": ExpectedCalibrationError(num_classes, n_bins=15)}
    )
    return labels, probs


class ExpectedCalibrationError(MulticlassCalibrationError):
    """torchmetrics' ECE (``norm="l1"``) over ``n_bins`` equal-width bins of the top-class confidence, the
    last one closed: ``[1 − 1/n, 1]``.

    torchmetrics bins with ``bucketize(confidence, linspace(0, 1, n + 1), right=True) − 1``, so a
    confidence of exactly 1.0 (a float32 softmax of a large margin) falls in a bin of its own above the
    n documented ones; a wrong prediction made with it then weighs as a bin of accuracy 0 and confidence
    1. Such confidences enter the last bin here, at the largest value below 1 in their dtype.
    """

    def __init__(self, num_classes: int, n_bins: int = 15) -> None:
        super().__init__(num_classes, n_bins=n_bins, norm="l1")

    def update(self, preds: Tensor, target: Tensor) -> None:
        below_one = torch.nextafter(torch.ones((), dtype=preds.dtype), torch.zeros((), dtype=preds.dtype))
        super().update(preds.clamp(max=below_one) if preds.is_floating_point() else preds, target)


class MeanAveragePrecision(MultilabelAveragePrecision):
    """Macro average precision over the labels that have a positive in the split (mAP).

    torchmetrics' macro average counts a label without positives as AP 0; such a label has no ranking to
    score, so it is left out here (a split in which no label has a positive gives NaN).
    """

    def __init__(self, num_labels: int, **kwargs) -> None:
        super().__init__(num_labels, average=None, **kwargs)
        self.add_state("positives", default=torch.zeros(num_labels, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(preds, target)
        self.positives += (target > 0).sum(dim=0)

    def compute(self) -> Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Nn]o positive samples.*")
            per_label = super().compute()
        present = self.positives > 0
        return per_label[present].mean() if present.any() else torch.tensor(float("nan"))


def multilabel_metrics(num_labels: int) -> tuple[MetricCollection, MetricCollection]:
    """Metrics on predicted 0/1 label vectors, and on per-label probabilities.

    Labels (a label is predicted when its probability exceeds 0.5): micro- and macro-F1, subset accuracy
    (every label right) and Hamming loss (the share of wrong labels). Probabilities: mAP
    (:class:`MeanAveragePrecision`).
    """
    labels = MetricCollection(
        {
            "f1_micro": MultilabelF1Score(num_labels, average="micro"),
            "f1_macro": MultilabelF1Score(num_labels, average="macro"),
            "subset_acc": MultilabelExactMatch(num_labels),
            "hamming": MultilabelHammingDistance(num_labels),
        }
    )
    return labels, MetricCollection({"map": MeanAveragePrecision(num_labels)})


def regression_metrics() -> MetricCollection:
    """MAE, RMSE and R² of the point predictions; with several targets, MAE and RMSE are over every target
    value (the square root of the mean squared error of all of them; on standardised targets each target
    weighs alike) and R² is the mean of the targets' R²."""
    return MetricCollection(
        {"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False), "r2": R2Score()}
    )


#: central-interval levels whose coverage is logged (``coverage_90``, ...), and the level whose width is
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
#: logged (``width_90``)
WIDTH_LEVEL = 0.9


def level_name(level: float) -> str:
    """``0.9`` -> ``"90"``, as in ``coverage_90``."""
    return f"{round(level * 100):d}"


class DistributionMetrics(Metric):
    r"""Scores of a predictive distribution (:class:`~lossbench.losses.base.Predictive`), per element:

    ``nll`` (mean negative log-density; only for losses that predict a density), ``crps`` (mean continuous
    ranked probability score; ``crps_grid`` when the loss scores it on a quantile grid, so the two are
    never ranked together), ``coverage_<p>`` (the share of targets inside the central ``p`` interval, for
    each of :data:`COVERAGE_LEVELS` the loss can give; a calibrated model has ``coverage_90 ≈ 0.9``),
    ``coverage_error`` (the mean ``|coverage − p|`` over all of them, only when the loss gives all) and
    ``width_90`` (the mean width of the central 90% interval). :meth:`compute` returns a dict of those the
    loss provides.
    """

    full_state_update = False
    #: the scores' directions (the whole dict has none, so ``higher_is_better`` stays ``None``): all are
    #: lower-is-better but coverage and width, whose target is the nominal level
    LOWER_IS_BETTER = ("nll", "crps", "crps_grid", "coverage_error")

    @classmethod
    def direction(cls, name: str) -> bool | None:
        """Whether higher is better for the score ``name`` (``None`` for coverage and width)."""
        return False if name in cls.LOWER_IS_BETTER else None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        n = len(COVERAGE_LEVELS)
        for name in ("nll", "crps", "width", "count", "nll_count", "width_count"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("covered", "covered_count"):
            self.add_state(name, default=torch.zeros(n, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predictive: Predictive, target: Tensor) -> None:
        self.crps_name = predictive.crps_name
        y = target.reshape(predictive.point.shape).to(predictive.point.dtype)
        self.count += y.numel()
        self.crps += predictive.crps(y).double().sum()
        nll = predictive.nll(y)
        if nll is not None:
            self.nll += nll.double().sum()
            self.nll_count += y.numel()
        for i, level in enumerate(COVERAGE_LEVELS):
            interval = predictive.interval(level)
            if interval is None:
                continue
            lower, upper = interval
            self.covered[i] += ((y >= lower) & (y <= upper)).sum()
            self.covered_count[i] += y.numel()
            if level == WIDTH_LEVEL:
                self.width += (upper - lower).double().sum()
                self.width_count += y.numel()

    def compute(self) -> dict[str, Tensor]:
        out = {getattr(self, "crps_name", "crps"): self.crps / self.count}
        if self.nll_count > 0:
            out["nll"] = self.nll / self.nll_count
        errors = []
        for i, level in enumerate(COVERAGE_LEVELS):
            if self.covered_count[i] > 0:
                coverage = self.covered[i] / self.covered_count[i]
                out[f"coverage_{level_name(level)}"] = coverage
                errors.append((coverage - level).abs())
        if len(errors) == len(COVERAGE_LEVELS):  # over the same levels for every loss, or not at all
            out["coverage_error"] = torch.stack(errors).mean()
        if self.width_count > 0:
            out[f"width_{level_name(WIDTH_LEVEL)}"] = self.width / self.width_count
        return {k: v.float() for k, v in out.items()}
