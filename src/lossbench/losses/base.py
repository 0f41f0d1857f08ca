"""The task contract every lossbench loss follows.

A loss declares which tasks it serves and how the model's raw outputs become class probabilities and
predictions (multi-label: per-label probabilities and 0/1 predictions, see :class:`MultilabelOutputs`).
The training module computes every metric from those, identically for every loss, so that losses are
compared on equal terms.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lossbench.errors import LossTaskMismatchError, check_choice
from lossbench.losses.targets import check_multi_hot, is_class_target, is_multi_hot
from lossbench.task import Task

REDUCTIONS = ("mean", "sum", "none")


class Predictive:
    """A predictive distribution per sample and target, as a distributional regression loss describes it.

    Scored by the regression metrics: :attr:`point` by MAE/RMSE/R², :meth:`nll` and :meth:`crps` per
    element, :meth:`interval` by the coverage and width of central intervals. All tensors are ``[N, T]``.
    """

    #: the point prediction (mean or median) ``[N, T]``
    point: Tensor
    #: the metric name of :meth:`crps`: ``crps`` when exact, another name for an approximation that must
    #: not be ranked against exact values
    crps_name: str = "crps"

    def nll(self, target: Tensor) -> Tensor | None:
        """Negative log-density of ``target`` ``[N, T]``; ``None`` when the loss predicts no density."""
        return None

    def crps(self, target: Tensor) -> Tensor:
        """Continuous ranked probability score of ``target`` ``[N, T]`` (lower is better)."""
        raise NotImplementedError

    def interval(self, level: float) -> tuple[Tensor, Tensor] | None:
        """The central interval holding ``level`` of the probability (``(lower, upper)``, each ``[N, T]``);
        ``None`` when the loss cannot give that level."""
        return None


class BenchLoss(nn.Module):
    """Base class: a loss with a task contract.

    Subclasses implement :meth:`per_sample` (the unreduced loss, shape ``[N]``) and may override
    :meth:`num_outputs`, :meth:`probabilities` and :meth:`predictions`. Classification targets are integer
    class indices ``[N]``; regression targets are floats ``[N, T]`` matching the outputs; multi-label
    targets are 0/1 vectors ``[N, L]`` (any dtype), used only by losses serving :attr:`Task.MULTILABEL`.
    """

    #: the tasks this loss serves; a class attribute, which ``__init__`` may refine per instance when it
    #: depends on the arguments (a class-balanced loss serves multi-label with a sigmoid base only)
    tasks: frozenset[Task] = frozenset({Task.CLASSIFICATION})
    #: when True, the trainer passes ``class_counts`` (training-split samples per class) to ``__init__``
    needs_class_counts: ClassVar[bool] = False
    #: buffers a checkpoint written before the loss kept them may lack (the loss's load hook fills them)
    optional_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    # --- the loss -----------------------------------------------------------------------------------
    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement per_sample(outputs, target), the unreduced loss [N]"
        )

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        self.check_target(target)
        if Task.REGRESSION in self.tasks and target.ndim == 1 and target.is_floating_point():
            target = target.unsqueeze(1)  # one target column, as [N, T]: a [N] target would broadcast
        return self.reduce(self.per_sample(upcast(outputs), target))

    def check_target(self, target: Tensor) -> None:
        """A ``[N, L]`` target of a loss serving multi-label must hold only 0 and 1, and a multi-label-only
        loss refuses any other target; a classification-only loss refuses float targets (which indexing
        would silently truncate) and multi-hot ``[N, L]`` targets."""
        served = self.tasks
        if Task.MULTILABEL in served and is_multi_hot(target):
            check_multi_hot(type(self).__name__, target)
            return
        if Task.MULTILABEL in served and Task.CLASSIFICATION not in served and Task.REGRESSION not in served:
            raise TypeError(
                f"{type(self).__name__} serves multi-label tasks only and expects multi-hot 0/1 targets "
                f"[N, L], got a target of shape {list(target.shape)}: pass the labels as a multi-hot matrix"
            )
        if Task.REGRESSION not in served and Task.MULTILABEL not in served and is_multi_hot(target):
            raise TypeError(
                f"{type(self).__name__} expects class indices [N] as targets, got a target of shape "
                f"{list(target.shape)}: multi-hot [N, L] targets need a loss serving multi-label "
                "(lossbench.config.losses_for_task(Task.MULTILABEL) lists them)"
            )
        if Task.REGRESSION not in served and not is_class_target(target):
            raise TypeError(
                f"{type(self).__name__} expects integer class indices as targets, got {target.dtype}: "
                "pass target.long() (soft or one-hot targets are not part of the contract)"
            )

    def reduce(self, loss: Tensor, weight: Tensor | None = None) -> Tensor:
        """Reduce per-sample losses; with ``weight``, ``mean`` divides by the total weight (as torch does)."""
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        if weight is None:
            return loss.mean()
        return loss.sum() / weight.sum()

    def on_train_epoch_start(self, epoch: int, max_epochs: int | None) -> None:
        """Called before each training epoch (for schedules such as deferred re-weighting). No-op."""

    # --- the task contract --------------------------------------------------------------------------
    def check_task(self, task: Task, num_classes: int | None = None) -> None:
        """Raise :class:`LossTaskMismatchError` when this loss cannot serve ``task``."""
        if Task(task) not in self.tasks:
            served = " or ".join(sorted(t.value for t in self.tasks))
            raise LossTaskMismatchError(
                f"{type(self).__name__} serves {served} tasks, but the data set is a {Task(task).value} task"
            )

    def num_outputs(self, task: Task, num_classes: int | None, num_targets: int = 1) -> int:
        """How many raw outputs the model must produce for this loss: one per class (classification) or
        label (multi-label), one per target (regression)."""
        return num_targets if Task(task) is Task.REGRESSION else num_classes

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Class probabilities ``[N, C]`` from raw outputs (classification only). Default: softmax."""
        return outputs.float().softmax(dim=-1)

    def predictions(self, outputs: Tensor) -> Tensor:
        """Predicted class indices ``[N]`` (classification) or values (regression)."""
        return outputs.argmax(dim=-1)

    def point_predictions(self, outputs: Tensor) -> Tensor:
        """Regression: the point prediction ``[N, T]`` the metrics MAE/RMSE/R² score. Default: the outputs
        themselves (a ``[N]`` output is one target); a distributional loss returns its mean or median."""
        return outputs.unsqueeze(-1) if outputs.ndim == 1 else outputs

    def predictive(self, outputs: Tensor) -> Predictive | None:
        """Regression: the predictive distribution the outputs describe, or ``None`` for a point loss."""
        return None

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def upcast(outputs: Tensor) -> Tensor:
    """Losses are computed in float32 at least: half/bfloat16 outputs (autocast) are upcast."""
    return outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs


class MultilabelOutputs:
    """Task contract of losses serving multi-label classification (``Task.MULTILABEL``).

    The model has one logit per label (``num_outputs(Task.MULTILABEL, L) == L``); targets are 0/1
    vectors ``[N, L]`` of any dtype (bool, int or float). :meth:`label_probabilities` is the per-label
    probability of "positive", ``σ(z)`` (not normalised across labels), and :meth:`label_predictions` is
    ``1`` where that probability exceeds 0.5, i.e. where the logit is positive.
    """

    def label_probabilities(self, outputs: Tensor) -> Tensor:
        """Per-label probabilities ``σ(z)`` ``[N, L]`` (float32, as :meth:`BenchLoss.probabilities`)."""
        return outputs.float().sigmoid()

    def label_predictions(self, outputs: Tensor) -> Tensor:
        """Per-label 0/1 predictions ``[N, L]`` (``long``): 1 where ``σ(z) > 0.5``, i.e. ``z > 0``."""
        return (outputs > 0).long()


class SigmoidOutputs(MultilabelOutputs):
    """Task contract of one-vs-rest sigmoid losses (BCE, sigmoid focal, ASL): classification and multi-label.

    Classification: binary data get a single logit (``t = y``); C > 2 classes get C logits, each "this
    class vs the rest". Class probabilities for the metrics are the sigmoids normalised to sum to one
    (binary: ``[1-σ, σ]``); predictions are the largest logit (binary: ``z > 0``). Multi-label: L logits,
    the multi-hot target used elementwise (``t = y``), per-label outputs as in :class:`MultilabelOutputs`.
    """

    tasks = frozenset({Task.CLASSIFICATION, Task.MULTILABEL})

    def num_outputs(self, task: Task, num_classes: int | None, num_targets: int = 1) -> int:
        if Task(task) is Task.CLASSIFICATION and num_classes == 2:
            return 1
        return super().num_outputs(task, num_classes, num_targets)

    def probabilities(self, outputs: Tensor) -> Tensor:
        """``[σ(−z), σ(z)]`` for one logit (``1 − σ(z)`` is 0 in float32 from z ≈ 17), and
        ``σ(z_c) / Σ_j σ(z_j)`` for C logits, computed as ``softmax(log σ(z))``: the softmax subtracts the
        largest term first, so it stays a distribution when every sigmoid underflows (logits of −100 or
        −1e6)."""
        z = outputs.float()
        if z.shape[-1] == 1:
            return torch.cat([torch.sigmoid(-z), torch.sigmoid(z)], dim=-1)
        return F.logsigmoid(z).softmax(dim=-1)

    def predictions(self, outputs: Tensor) -> Tensor:
        if outputs.shape[-1] == 1:
            return (outputs[..., 0] > 0).long()
        return outputs.argmax(dim=-1)
