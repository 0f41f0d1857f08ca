"""The task a data set poses, and the data contract a data module fulfils so any loss and model train on it.

The training entry point reads five things from a data module once its ``setup("fit")`` has run, and
nothing else: the :class:`Task`, the number of classes (classification) or of targets (regression), the
training split's class counts (for class-balanced losses) and the shape of one input sample. Any
``LightningDataModule`` that provides them — plus the usual ``train_dataloader`` / ``val_dataloader`` /
``test_dataloader`` yielding ``(x, y)`` batches — trains with lossbench::

    class MyDataModule(L.LightningDataModule):
        task = Task.CLASSIFICATION
        num_classes = 3
        num_targets = 1
        input_shape = (13,)

        def setup(self, stage=None):           # may be called more than once
            ...                                # build the splits
            self.class_counts = torch.bincount(train_labels, minlength=3)

        def train_dataloader(self): ...        # batches (x [B, 13] float, y [B] long)

Classification targets are class indices ``[B]`` (``long``); multi-label targets are 0/1 vectors ``[B, L]``
(``float``), with ``num_classes = L`` labels and ``class_counts`` the training positives per label;
regression targets are floats ``[B, T]``.
:func:`check_data_contract` checks a module before any training and names everything that is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from numbers import Integral
from typing import Any, Protocol, runtime_checkable

from lossbench.errors import ConfigError

log = logging.getLogger("lossbench")


class Task(str, Enum):
    """What a data set asks the model to predict."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    #: several labels per sample: targets are 0/1 vectors ``[B, L]``
    MULTILABEL = "multilabel"

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class BenchDataModule(Protocol):
    """What lossbench reads from a data module after ``setup("fit")`` (see the module docs)."""

    task: Task
    #: classes (classification) or labels (multi-label); ``None`` for regression
    num_classes: int | None
    #: targets per sample: 1 for classification, ``L`` for multi-label, ``T`` for regression ``[B, T]``
    num_targets: int
    #: training samples per class (classification) or positives per label (multi-label); ``None`` for
    #: regression
    class_counts: Any
    #: shape of one input sample, e.g. ``(13,)`` or ``(3, 32, 32)``
    input_shape: Sequence[int]

    def train_dataloader(self) -> Any: ...

    def val_dataloader(self) -> Any: ...

    def test_dataloader(self) -> Any: ...


def _is_int(x: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(x, Integral) and not isinstance(x, bool)


def own_hook(dm: Any, hook: str) -> bool:
    """Whether ``dm``'s class defines ``hook`` itself: a ``LightningDataModule``'s inherited dataloader
    hooks only raise Lightning's "must be implemented" when fit reaches them."""
    from lightning.pytorch import LightningDataModule

    inherited = getattr(LightningDataModule, hook, None)
    return not isinstance(dm, LightningDataModule) or getattr(type(dm), hook, None) is not inherited


def _problems(dm: Any) -> list[str]:
    """Everything about ``dm`` that breaks the contract, one phrase each."""
    problems = []
    for hook in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if not callable(getattr(dm, hook, None)) or not own_hook(dm, hook):
            problems.append(f"a {hook}() method")
    try:
        task: Task | None = Task(getattr(dm, "task", None))
    except ValueError:
        tasks = ", ".join(t.value for t in Task)
        problems.append(f"task (one of {tasks}), got {getattr(dm, 'task', None)!r}")
        task = None  # the task's own attributes cannot be named; input_shape still can
    shape = getattr(dm, "input_shape", None)
    if not isinstance(shape, Sequence) or len(shape) == 0 or not all(_is_int(s) and s > 0 for s in shape):
        problems.append(f"input_shape (a tuple of positive ints such as (13,) or (3, 32, 32)), got {shape!r}")
    if task is None:
        return problems
    if task in (Task.CLASSIFICATION, Task.MULTILABEL):
        c = getattr(dm, "num_classes", None)
        what = "classes" if task is Task.CLASSIFICATION else "labels"
        if not _is_int(c) or c < 2:
            problems.append(f"num_classes (the number of {what}, an int >= 2), got {c!r}")
        counts = getattr(dm, "class_counts", None)
        try:
            n = len(counts) if counts is not None else None
        except TypeError:
            n = None
        if n is None or (_is_int(c) and n != c):
            per = "samples per class" if task is Task.CLASSIFICATION else "positives per label"
            problems.append(f"class_counts (training {per}, length num_classes={c}), got {counts!r}")
    else:
        t = getattr(dm, "num_targets", None)
        if not _is_int(t) or t < 1:
            problems.append(f"num_targets (an int >= 1), got {t!r}")
    return problems


def check_data_contract(dm: Any, name: str = "data") -> None:
    """Raise a :class:`ConfigError` listing every part of the data contract ``dm`` lacks (after setup)."""
    problems = _problems(dm)
    if problems:
        raise ConfigError(
            f"{name} ({type(dm).__module__}.{type(dm).__qualname__}) does not provide the data contract "
            f"after setup('fit'): it needs {'; '.join(problems)}. See lossbench.task.BenchDataModule"
        )


#: a training split whose largest class is at least this many times its smallest is "imbalanced"
IMBALANCE_RATIO = 3.0


def imbalance_ratio(class_counts: Any) -> float | None:
    """Largest over smallest non-zero training class count (``None`` without counts)."""
    counts = [float(c) for c in (class_counts if class_counts is not None else []) if float(c) > 0]
    return max(counts) / min(counts) if counts else None


def imbalanced(class_counts: Any) -> bool:
    """Whether the training class counts are imbalanced (:data:`IMBALANCE_RATIO` or more)."""
    ratio = imbalance_ratio(class_counts)
    return ratio is not None and ratio >= IMBALANCE_RATIO


@dataclass(frozen=True)
class TaskSpec:
    """What lossbench does the same way for every run of a task: the one place for a task's defaults.

    Attributes:
        task: the task.
        monitor: the validation metric checkpoints are chosen on when ``monitor.metric`` is null.
        headline: the test metric a run's one-line summary and the sweep table lead with.
        baseline: the loss every other loss is compared against (report, ``advise``).
        metrics: the name of the factory in :mod:`lossbench.metrics` giving the task's metric collections.
        imbalanced_monitor, imbalanced_headline: what replaces ``monitor`` and ``headline`` when the
            training classes are imbalanced (:func:`imbalanced`): accuracy would reward the majority class.
    """

    task: Task
    monitor: str
    headline: str
    baseline: str
    metrics: str
    imbalanced_monitor: str | None = None
    imbalanced_headline: str | None = None

    def metric_collections(self, num_classes: int | None) -> tuple[Any, ...]:
        """The task's torchmetrics collections (labels and probabilities, or values), fresh."""
        from lossbench import metrics

        factory = getattr(metrics, self.metrics)
        return factory(num_classes) if self.task is not Task.REGRESSION else (factory(),)

    def default_monitor(self, val_metrics: Sequence[str], class_counts: Any = None) -> str:
        """The metric to monitor when none is set: :attr:`monitor`; :attr:`imbalanced_monitor` for
        imbalanced training classes; for a distributional loss (whose validation metrics include a proper
        score) its NLL, else its CRPS."""
        if self.task is Task.REGRESSION:
            for proper in ("val/nll", "val/crps", "val/crps_grid"):
                if proper in val_metrics:
                    return proper
        if self.imbalanced_monitor and imbalanced(class_counts):
            return self.imbalanced_monitor
        return self.monitor

    def headline_for(self, class_counts: Any = None) -> str:
        """The headline test metric of a run whose training split had ``class_counts``."""
        if self.imbalanced_headline and imbalanced(class_counts):
            return self.imbalanced_headline
        return self.headline

    def prediction_arrays(self, loss: Any, outputs: Any) -> dict[str, Any]:
        """What ``predictions.npz`` keeps of a batch of model ``outputs`` (tensors): ``probs`` (float32)
        and ``preds`` for classification and multi-label; for regression the raw ``outputs`` (a
        distributional loss's heads before its own transforms, e.g. a variance before its softplus), the
        ``point`` predictions and, where the loss predicts a distribution, its central 90% interval
        (``lower_90``, ``upper_90``) — each from the loss, as the metrics see them."""
        import torch

        if self.task is Task.CLASSIFICATION:
            return {"probs": loss.probabilities(outputs).float(), "preds": loss.predictions(outputs)}
        if self.task is Task.MULTILABEL:
            preds = loss.label_predictions(outputs).to(torch.int8)
            return {"probs": loss.label_probabilities(outputs).float(), "preds": preds}
        arrays = {"outputs": outputs, "point": loss.point_predictions(outputs).float()}
        predictive = loss.predictive(outputs)
        interval = predictive.interval(0.9) if predictive is not None else None
        if interval is not None:
            arrays["lower_90"], arrays["upper_90"] = interval[0].float(), interval[1].float()
        return arrays

    def headline_of(self, test: dict[str, float], class_counts: Any = None) -> tuple[str, float] | None:
        """``(headline metric, value)`` among a run's test metrics, if it has it (:meth:`headline_for`)."""
        name = self.headline_for(class_counts)
        return (name, test[name]) if name in test else None


SPECS = {
    Task.CLASSIFICATION: TaskSpec(
        Task.CLASSIFICATION,
        "val/acc",
        "test/acc",
        "ce",
        "classification_metrics",
        "val/bal_acc",
        "test/bal_acc",
    ),
    Task.MULTILABEL: TaskSpec(Task.MULTILABEL, "val/map", "test/map", "bce", "multilabel_metrics"),
    Task.REGRESSION: TaskSpec(Task.REGRESSION, "val/rmse", "test/rmse", "mse", "regression_metrics"),
}


def spec(task: Task | str) -> TaskSpec:
    """The :class:`TaskSpec` of ``task``."""
    return SPECS[Task(task)]


def resolve_monitor(
    metric: str | None,
    mode: str | None,
    task: Task | str | None = None,
    val_metrics: Mapping[str, bool | None] | Sequence[str] | None = None,
    class_counts: Any = None,
) -> tuple[str, str]:
    """``(monitor.metric, monitor.mode)`` with nulls filled — the ``task``'s default metric
    (:meth:`TaskSpec.default_monitor`), the metric's direction (``val/nll`` -> ``min``) — and checked
    against the logged ``val_metrics`` when given. The one place a monitored metric is decided.

    ``val_metrics`` as a mapping (:meth:`lossbench.module.LossBenchModule.metric_directions`) gives each
    metric's direction as its torchmetrics object declares it; otherwise the direction comes from
    :func:`lossbench.directions.higher_is_better`.
    """
    from lossbench.directions import higher_is_better, is_descriptive

    if not metric and task is None:
        raise ValueError("a null monitor.metric needs the task to choose the default")
    if not metric:
        metric = spec(task).default_monitor(val_metrics or (), class_counts)
        if metric == spec(task).imbalanced_monitor:
            log.info(
                "monitor.metric=%s: the training classes are imbalanced (largest/smallest %.1f >= %g); set "
                "monitor.metric to choose another",
                metric,
                imbalance_ratio(class_counts),
                IMBALANCE_RATIO,
            )
    if is_descriptive(metric):
        ranked = ("val/coverage_error", "val/crps", "val/crps_grid", "val/nll", "val/mae", "val/rmse")
        logged = [m for m in ranked if val_metrics is None or m in val_metrics][:2] or ["val/rmse"]
        raise ConfigError(
            f"monitor.metric={metric} has no better direction (the target is the nominal level): "
            f"use monitor.metric={' or '.join(logged)} instead"
        )
    if val_metrics is not None and metric not in val_metrics:
        choices = [m for m in val_metrics if not is_descriptive(m)]  # those a monitor can follow
        raise ConfigError(
            f"monitor.metric={metric} is not a logged validation metric: choose one of {', '.join(choices)}"
        )
    declared = val_metrics.get(metric) if isinstance(val_metrics, Mapping) else None
    higher = higher_is_better(metric) if declared is None else declared
    known = declared if declared is not None else False if not higher_is_better(metric) else None
    if mode and known is not None and mode != ("max" if known else "min"):
        log.warning(
            "monitor.mode=%s keeps the epoch with the %s %s, which is better %s: set monitor.mode=%s, or "
            "leave it null to follow the metric",
            mode,
            "highest" if mode == "max" else "lowest",
            metric,
            "higher" if known else "lower",
            "max" if known else "min",
        )
    return metric, str(mode or ("max" if higher else "min"))
