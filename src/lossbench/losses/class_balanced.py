"""The class-balanced loss on the effective number of samples, for single-label and multi-label data."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_choice, check_range
from lossbench.losses.base import BenchLoss, SigmoidOutputs, Task
from lossbench.losses.focal import _SigmoidFocalFn, focal_term
from lossbench.losses.long_tail import _ClassCountLoss, effective_number_weights
from lossbench.losses.targets import binary_targets, is_multi_hot

BASES = ("ce", "focal", "sigmoid", "sigmoid_focal")


class ClassBalancedLoss(SigmoidOutputs, _ClassCountLoss):
    r"""Class-balanced loss on the effective number of samples.

    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019.

    .. math::
        \ell(z, y) = w_y\, \ell_{\text{base}}(z, y),\qquad
        w_c = C\,\frac{(1-\beta)/(1-\beta^{n_c})}{\sum_k (1-\beta)/(1-\beta^{n_k})}

    over a base loss: ``ce`` (softmax cross-entropy), ``focal`` (softmax focal, ``gamma``), ``sigmoid``
    (one-vs-rest BCE) or ``sigmoid_focal`` (one-vs-rest sigmoid focal, ``gamma``, as in the paper's
    experiments). On single-label data the weight ``w_y`` of the sample's class scales the whole
    per-sample loss. ``mean`` averages the weighted losses over samples (the paper's normalisation: the
    weights sum to C). ``β = 0`` gives the unweighted base; ``β → 1`` inverse class frequency. The task
    contract is the base's: softmax bases use softmax probabilities, sigmoid bases the normalised
    sigmoids (one logit on binary data).

    Multi-label (sigmoid bases only; softmax bases do not serve it): ``n_l`` are the training positives
    of label ``l`` and each label's term is weighted by its own weight,

    .. math::
        \ell(z, t) = \sum_l w_l\, \ell_{\text{base}}(z_l, t_l),\qquad \textstyle\sum_l w_l = L

    with ``ℓ_base`` the per-label BCE or sigmoid focal term on the multi-hot target ``t``.

    Args:
        base: ``ce``, ``focal``, ``sigmoid`` or ``sigmoid_focal``.
        beta: ``β ∈ [0, 1)``.
        gamma: focusing parameter ``γ ≥ 0`` of the focal bases.
        class_counts: training samples per class (multi-label: positives per label), passed in by the
            trainer.
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    #: the default base's (``ce``); an instance with a sigmoid base also serves multi-label
    tasks = frozenset({Task.CLASSIFICATION})

    def __init__(
        self,
        base: str = "ce",
        beta: float = 0.9999,
        gamma: float = 2.0,
        class_counts: Sequence[int] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction)
        self.base = check_choice("base", base, BASES)
        self.beta = float(check_range("beta", beta, 0.0, 1.0, high_inclusive=False))
        self.gamma = float(check_range("gamma", gamma, 0.0))
        self.sigmoid = base.startswith("sigmoid")
        self.tasks = SigmoidOutputs.tasks if self.sigmoid else frozenset({Task.CLASSIFICATION})
        weights = (
            None if self.class_counts is None else effective_number_weights(self.class_counts, self.beta)
        )
        self.register_buffer("weight", weights)

    def base_per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        if self.base == "ce":
            return F.cross_entropy(outputs, target, reduction="none")
        if self.base == "focal":
            logpt = F.log_softmax(outputs, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
            return focal_term(logpt, self.gamma)
        if self.base == "sigmoid":
            t = binary_targets(target, outputs)
            return F.binary_cross_entropy_with_logits(outputs, t, reduction="none").sum(dim=-1)
        return _SigmoidFocalFn.apply(outputs, target, self.gamma, None)

    def label_weighted(self, outputs: Tensor, target: Tensor) -> Tensor:
        """Multi-hot targets: ``Σ_l w_l ℓ_base(z_l, t_l)`` with the sigmoid base."""
        weight = None if self.weight is None else self.weight.to(outputs.dtype)
        if self.base == "sigmoid":
            t = binary_targets(target, outputs)
            return F.binary_cross_entropy_with_logits(outputs, t, weight=weight, reduction="none").sum(-1)
        return _SigmoidFocalFn.apply(outputs, target, self.gamma, None, weight)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        if is_multi_hot(target):
            return self.label_weighted(outputs, target)
        target = target.long()
        loss = self.base_per_sample(outputs, target)
        if self.weight is not None:
            loss = loss * self.weight.to(loss.dtype)[target]
        return loss

    def num_outputs(self, task: Task, num_classes: int | None, num_targets: int = 1) -> int:
        if self.sigmoid:
            return super().num_outputs(task, num_classes, num_targets)
        return BenchLoss.num_outputs(self, task, num_classes, num_targets)

    def probabilities(self, outputs: Tensor) -> Tensor:
        return super().probabilities(outputs) if self.sigmoid else BenchLoss.probabilities(self, outputs)

    def predictions(self, outputs: Tensor) -> Tensor:
        return super().predictions(outputs) if self.sigmoid else BenchLoss.predictions(self, outputs)

    def extra_repr(self) -> str:
        return f"base={self.base!r}, beta={self.beta}, gamma={self.gamma}, {super().extra_repr()}"
