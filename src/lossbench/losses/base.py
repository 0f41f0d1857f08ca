"""The task contract every lossbench loss follows.

A loss declares which tasks it serves and how the model's raw outputs become class probabilities and
predictions. The training module computes every metric from those, identically for every loss, so that
losses are compared on equal terms.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from lossbench.errors import LossTaskMismatchError, check_choice
from lossbench.task import Task

REDUCTIONS = ("mean", "sum", "none")


class BenchLoss(nn.Module):
    """Base class: a loss with a task contract.

    Subclasses implement :meth:`per_sample` (the unreduced loss, shape ``[N]``) and may override
    :meth:`num_outputs`, :meth:`probabilities` and :meth:`predictions`. Classification targets are integer
    class indices ``[N]``; regression targets are floats ``[N, T]`` matching the outputs.
    """

    tasks: ClassVar[frozenset[Task]] = frozenset({Task.CLASSIFICATION})
    #: when True, the trainer passes ``class_counts`` (training-split samples per class) to ``__init__``
    needs_class_counts: ClassVar[bool] = False

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    # --- the loss -----------------------------------------------------------------------------------
    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        self.check_target(target)
        return self.reduce(self.per_sample(upcast(outputs), target))

    def check_target(self, target: Tensor) -> None:
        """A classification-only loss refuses float targets (which indexing would silently truncate)."""
        if Task.REGRESSION not in self.tasks and not is_class_target(target):
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
        """How many raw outputs the model must produce for this loss."""
        return num_classes if Task(task) is Task.CLASSIFICATION else num_targets

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Class probabilities ``[N, C]`` from raw outputs (classification only). Default: softmax."""
        return outputs.float().softmax(dim=-1)

    def predictions(self, outputs: Tensor) -> Tensor:
        """Predicted class indices ``[N]`` (classification) or values (regression)."""
        return outputs.argmax(dim=-1)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def upcast(outputs: Tensor) -> Tensor:
    """Losses are computed in float32 at least: half/bfloat16 outputs (autocast) are upcast."""
    return outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs


class SigmoidOutputs:
    """Task contract of one-vs-rest sigmoid losses (BCE, sigmoid focal, ASL).

    Binary data get a single logit (``t = y``); C > 2 classes get C logits, each "this class vs the
    rest". Class probabilities for the metrics are the sigmoids normalised to sum to one (binary:
    ``[1-σ, σ]``); predictions are the largest logit (binary: ``z > 0``).
    """

    def num_outputs(self, task: Task, num_classes: int | None, num_targets: int = 1) -> int:
        if Task(task) is Task.CLASSIFICATION and num_classes == 2:
            return 1
        return num_classes if Task(task) is Task.CLASSIFICATION else num_targets

    def probabilities(self, outputs: Tensor) -> Tensor:
        p = outputs.float().sigmoid()
        if p.shape[-1] == 1:
            return torch.cat([1 - p, p], dim=-1)
        return p / p.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)

    def predictions(self, outputs: Tensor) -> Tensor:
        if outputs.shape[-1] == 1:
            return (outputs[..., 0] > 0).long()
        return outputs.argmax(dim=-1)


def binary_targets(target: Tensor, outputs: Tensor) -> Tensor:
    """0/1 targets shaped like ``outputs``: one-hot for C logits, ``y`` itself for a single logit."""
    if outputs.shape[-1] == 1:
        return target.to(outputs.dtype).unsqueeze(-1)
    return one_hot_like(target, outputs)


def one_hot_like(target: Tensor, outputs: Tensor) -> Tensor:
    """One-hot encode integer ``target`` to the shape and dtype of ``outputs`` ``[N, C]``."""
    onehot = torch.zeros_like(outputs)
    return onehot.scatter_(-1, target.long().unsqueeze(-1), 1.0)


def as_columns(outputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Regression outputs ``[N, T]`` (a 1-D ``[N]`` becomes ``[N, 1]``) and the target cast to match them."""
    if outputs.ndim == 1:
        outputs = outputs.unsqueeze(-1)
    if target.numel() != outputs.numel():
        raise ValueError(
            f"regression outputs of shape {list(outputs.shape)} and targets of shape {list(target.shape)} "
            "do not match: the model needs one output per target column"
        )
    return outputs, target.to(outputs.dtype).reshape(outputs.shape)


def is_class_target(target: Tensor) -> bool:
    """Integer targets are class indices (classification); float targets are regression values."""
    return not (target.is_floating_point() or target.is_complex())
