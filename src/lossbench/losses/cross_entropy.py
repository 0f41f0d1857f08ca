"""Softmax cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_range
from lossbench.losses.base import BenchLoss, upcast
from lossbench.losses.targets import checked_weights


class CrossEntropyLoss(BenchLoss):
    r"""Softmax cross-entropy, optionally class-weighted and label-smoothed.

    .. math::
        \ell(z, y) = -\sum_c w_c\, q_c \log \operatorname{softmax}(z)_c,\qquad
        q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / C

    The negative log-likelihood of a softmax (multinomial logistic) model: Bridle, "Probabilistic
    Interpretation of Feedforward Classification Network Outputs, with Relationships to Statistical
    Pattern Recognition", Neurocomputing (NATO ASI Series F 68), Springer 1990. With class weights, ``mean``
    divides by the summed weights of the targets, exactly as :func:`torch.nn.functional.cross_entropy`
    does; a batch whose targets all weigh 0 (a class weight may be 0) contributes 0, where torch's mean
    reads 0/0. Label smoothing: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016.

    Args:
        weight: per-class weights ``w_c`` (length C) or ``None``.
        label_smoothing: ``ε`` in ``[0, 1)``.
        ignore_index: targets with this value contribute nothing.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(
        self,
        weight: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction)
        self.label_smoothing = check_range("label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False)
        self.ignore_index = ignore_index
        self.register_buffer("weight", checked_weights("weight", weight))
        #: a class weighs 0: a batch of only that class has no weight to divide by (:meth:`forward`)
        self.weightless_batches = self.weight is not None and bool((self.weight == 0).any())

    def _cross_entropy(self, outputs: Tensor, target: Tensor, reduction: str) -> Tensor:
        outputs = upcast(outputs)
        weight = None if self.weight is None else self.weight.to(outputs.dtype)
        return F.cross_entropy(
            outputs,
            target,
            weight=weight,
            ignore_index=self.ignore_index,
            reduction=reduction,
            label_smoothing=self.label_smoothing,
        )

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        # torch's own reduction: ``mean`` divides by the targets' summed weights, ignored targets excluded
        self.check_target(target)  # a float one-hot target would be read as soft labels
        if self.reduction != "mean" or not self.weightless_batches:
            return self._cross_entropy(outputs, target, self.reduction)
        total = self._cross_entropy(outputs, target, "sum")
        kept = target[target != self.ignore_index]
        weight = self.weight.to(total.dtype)[kept].sum()
        weighed = weight > 0
        return torch.where(weighed, total / torch.where(weighed, weight, 1.0), total * 0.0)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        return self._cross_entropy(outputs, target, "none")
