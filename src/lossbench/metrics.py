"""Task metrics, computed identically for every loss from its probabilities and predictions."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, R2Score
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MulticlassRecall,
)

from lossbench.task import Task


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
        {"nll": NegativeLogLikelihood(), "ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1")}
    )
    return labels, probs


def regression_metrics() -> MetricCollection:
    """MAE, RMSE and R² (averaged over targets)."""
    return MetricCollection(
        {"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False), "r2": R2Score()}
    )


#: the metric each task monitors by default, and whether higher is better
DEFAULT_MONITOR = {Task.CLASSIFICATION: ("val/acc", "max"), Task.REGRESSION: ("val/rmse", "min")}


def resolve_monitor(metric: str | None, mode: str | None, task: Task) -> tuple[str, str]:
    """``monitor.metric`` / ``monitor.mode`` with nulls filled: the task's default metric, the metric's
    direction (``val/nll`` -> ``min``)."""
    from lossbench.directions import higher_is_better

    metric = metric or DEFAULT_MONITOR[task][0]
    return str(metric), str(mode or ("max" if higher_is_better(metric) else "min"))


def with_monitor(cfg: DictConfig, task: Task) -> DictConfig:
    """A copy of ``cfg`` with ``monitor`` filled by :func:`resolve_monitor` (``cfg`` itself is unchanged);
    the callbacks' ``${monitor.metric}`` then resolve to it."""
    metric, mode = resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, task)
    return OmegaConf.merge(cfg, {"monitor": {"metric": metric, "mode": mode}})
