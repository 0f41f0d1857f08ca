"""Sigmoid binary cross-entropy: one-vs-rest for more than two classes, elementwise for multi-label."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import ConfigError
from lossbench.losses.base import BenchLoss, SigmoidOutputs, Task
from lossbench.losses.targets import binary_targets, checked_weights


class BCEWithLogitsLoss(SigmoidOutputs, BenchLoss):
    r"""Binary cross-entropy on sigmoid outputs; one-vs-rest over C classes, or per label (multi-label).

    .. math::
        \ell(z, t) = -\sum_{c} \big[p_c\, t_c \log\sigma(z_c) + (1-t_c)\log(1-\sigma(z_c))\big]

    The log-loss of logistic regression (Cox, "The Regression Analysis of Binary Sequences", Journal of
    the Royal Statistical Society B 1958), per class or label. Classification: ``t = onehot(y)``. On a
    binary data set the model has a single logit (``t = y``);
    with C > 2 classes it has C logits, each a binary "this class vs the rest" problem, and the per-sample
    loss sums over them. Class probabilities for the metrics are the sigmoids normalised to sum to one
    (binary: ``[1-σ, σ]``); predictions are the largest logit (binary: ``z > 0``). Multi-label: ``t`` is
    the multi-hot target ``[N, L]`` itself, i.e. the per-label
    :func:`torch.nn.functional.binary_cross_entropy_with_logits` summed over labels; label probabilities
    ``σ(z)``, predictions ``z > 0``.

    Args:
        pos_weight: weight ``p_c`` of the positive term, a scalar or one per class (or label).
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    def __init__(self, pos_weight: float | Sequence[float] | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("pos_weight", checked_weights("pos_weight", pos_weight, positive=True))

    def check_task(self, task: Task, num_classes: int | None = None) -> None:
        super().check_task(task, num_classes)
        outputs = self.num_outputs(task, num_classes)
        if self.pos_weight is not None and self.pos_weight.numel() not in (1, outputs):
            unit = "labels" if Task(task) is Task.MULTILABEL else "classes"
            raise ConfigError(
                f"loss.pos_weight has {self.pos_weight.numel()} values but the model has {outputs} output(s) "
                f"for {num_classes} {unit}: give one value, or one per output"
            )

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(outputs.dtype)
        t = binary_targets(target, outputs)
        loss = F.binary_cross_entropy_with_logits(outputs, t, pos_weight=pos_weight, reduction="none")
        return loss.sum(dim=-1)
