"""Each replica's validation and test metrics, computed as :class:`lossbench.module.LossBenchModule`
computes a run's.

A replica's metrics are the task's torchmetrics collections
(``lossbench.task.spec(task).metric_collections(num_classes)``) fed with its own loss's probabilities and
predictions (multi-label: label probabilities and predictions; regression: point predictions, and the
predictive distribution of a distributional loss), plus the mean of its loss weighted by batch size, as
the unpacked module updates them at each step and computes them at the end of the epoch; on the test split
also its post-hoc recalibration (:mod:`lossbench.calibration`), as its run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lossbench.calibration import Recalibration
from lossbench.losses.base import BenchLoss
from lossbench.metrics import DistributionMetrics
from lossbench.task import Task, spec

STAGES = ("val", "test")


class StageMetrics(nn.Module):
    """One replica's metrics of the ``val`` and ``test`` stages (names as its run logs them: ``val/acc``)."""

    def __init__(self, loss: BenchLoss, task: Task, num_classes: int | None) -> None:
        super().__init__()
        self.task = Task(task)
        self.distributional = type(loss).predictive is not BenchLoss.predictive
        self.stage_loss = nn.ModuleDict({s: MeanMetric() for s in STAGES})
        collections = spec(self.task).metric_collections(num_classes)
        self.collections = nn.ModuleDict(
            {s: nn.ModuleList([c.clone(prefix=f"{s}/") for c in collections]) for s in STAGES}
        )
        if self.distributional:
            self.distribution = nn.ModuleDict({s: DistributionMetrics() for s in STAGES})
        #: the replica's post-hoc recalibration, fitted by :func:`lossbench.packed.fit.calibrate`
        self.recalibration = Recalibration(self.task, num_classes)

    def update(self, stage: str, loss: BenchLoss, outputs: Tensor, y: Tensor) -> None:
        """Add one batch: this replica's ``outputs`` on targets ``y``."""
        self.stage_loss[stage].update(loss(outputs, y).detach(), weight=len(y))
        if stage == "test":
            self.recalibration.update(loss, outputs.detach().float(), y)
        collections = self.collections[stage]
        if self.task is Task.CLASSIFICATION:
            labels, probs = collections
            labels.update(loss.predictions(outputs), y)
            probs.update(loss.probabilities(outputs), y)
        elif self.task is Task.MULTILABEL:
            labels, probs = collections
            labels.update(loss.label_predictions(outputs), y.long())
            probs.update(loss.label_probabilities(outputs), y.long())
        else:
            (values,) = collections
            point = loss.point_predictions(outputs).contiguous()  # a replica's slice: a strided view
            y = y.reshape(point.shape)
            if point.shape[-1] == 1:
                values.update(point.squeeze(-1), y.squeeze(-1))
            else:
                values.update(point, y)
            if self.distributional:
                self.distribution[stage].update(loss.predictive(outputs), y)

    def compute(self, stage: str) -> dict[str, float]:
        """The stage's metrics over the epoch (``{"val/loss": ..., "val/acc": ...}``), then reset."""
        values: dict[str, Any] = {f"{stage}/loss": self.stage_loss[stage].compute()}
        for collection in self.collections[stage]:
            values.update(collection.compute())
        if self.distributional:
            values.update({f"{stage}/{k}": v for k, v in self.distribution[stage].compute().items()})
        if stage == "test":
            values.update({f"test/{k}": v for k, v in self.recalibration.compute().items()})
        self.reset(stage)
        return {k: float(torch.as_tensor(v)) for k, v in sorted(values.items())}

    def reset(self, stage: str) -> None:
        self.stage_loss[stage].reset()
        for collection in self.collections[stage]:
            collection.reset()
        if self.distributional:
            self.distribution[stage].reset()
        if stage == "test":
            self.recalibration.reset()


class ReplicaMetrics(nn.ModuleList):
    """One :class:`StageMetrics` per replica."""

    def __init__(self, losses: Sequence[BenchLoss], task: Task, num_classes: int | None) -> None:
        super().__init__([StageMetrics(loss, task, num_classes) for loss in losses])
