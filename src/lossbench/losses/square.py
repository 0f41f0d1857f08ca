"""Square-type losses: MSE (regression, or classification on one-hot targets) and the Brier score.

:class:`ElementwisePenaltyLoss` is the base of every element-wise penalty that serves both tasks; Huber, a
robust regression penalty, is in :mod:`lossbench.losses.regression` with the others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_range
from lossbench.losses.base import BenchLoss, Task
from lossbench.losses.targets import as_columns, is_class_target, one_hot_like


class ElementwisePenaltyLoss(BenchLoss):
    r"""An element-wise penalty ``ρ(o - t)`` averaged over outputs.

    Regression: ``t`` is the target vector. Classification (Hui & Belkin, "Evaluation of Neural
    Architectures Trained with Square Loss vs Cross-Entropy in Classification Tasks", ICLR 2021): the
    logits regress the one-hot target, with their rescaling option

    .. math::
        \ell(o, y) = \tfrac{1}{C}\Big[k\,\rho(o_y - M) + \sum_{c \ne y} \rho(o_c)\Big]

    (``k = M = 1`` is the plain square loss on one-hot targets). Predictions are ``argmax o``; class
    probabilities for the metrics are ``max(o, 0)`` plus a floor of 1e-4, normalised to sum to one.
    """

    tasks = frozenset({Task.CLASSIFICATION, Task.REGRESSION})
    prob_floor = 1e-4

    def __init__(self, rescale_k: float = 1.0, rescale_m: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.rescale_k = float(check_range("rescale_k", rescale_k, 0.0, low_inclusive=False))
        self.rescale_m = float(check_range("rescale_m", rescale_m, 0.0, low_inclusive=False))

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        if not is_class_target(target):
            return self.penalty(*as_columns(outputs, target)).flatten(1).mean(dim=-1)
        onehot = one_hot_like(target, outputs)
        if self.rescale_k == 1.0 and self.rescale_m == 1.0:
            return self.penalty(outputs, onehot).mean(dim=-1)
        elementwise = self.penalty(outputs, onehot * self.rescale_m)
        weight = 1.0 + (self.rescale_k - 1.0) * onehot
        return (weight * elementwise).mean(dim=-1)

    def probabilities(self, outputs: Tensor) -> Tensor:
        p = outputs.float().clamp_min(0.0) + self.prob_floor
        return p / p.sum(dim=-1, keepdim=True)


class MSELoss(ElementwisePenaltyLoss):
    r"""Mean squared error (Gauss's least squares; the Gaussian likelihood's loss).

    .. math::
        \rho(r) = r^2

    On classification, the square loss on one-hot targets of Hui & Belkin, "Evaluation of Neural
    Architectures Trained with Square Loss vs Cross-Entropy in Classification Tasks", ICLR 2021, with their
    rescaling (:class:`ElementwisePenaltyLoss`).

    Args:
        rescale_k: classification: weight ``k`` of the true class's term.
        rescale_m: classification: target ``M`` of the true class's output.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(outputs, target, reduction="none")


class BrierLoss(BenchLoss):
    r"""Brier score: the squared error of the softmax probabilities against the one-hot label.

    Brier, "Verification of Forecasts Expressed in Terms of Probability", Monthly Weather Review 1950.

    .. math::
        \ell(z, y) = \sum_c \big(\operatorname{softmax}(z)_c - \mathbb{1}[c = y]\big)^2 \in [0, 2]

    A strictly proper scoring rule, bounded (so noisy labels cannot dominate). Probabilities: softmax;
    predictions: argmax. Classification only.
    """

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        return _BrierFn.apply(outputs, target.long())


class _BrierFn(torch.autograd.Function):
    r"""Brier score per sample, ``Σ p² - 2 p_y + 1``, with a hand-written backward.

    The softmax Jacobian applied to ``dℓ/dp = 2(p - e_y)`` gives
    ``dℓ/dz = 2 p ⊙ (p - s) - 2 p_y e_y`` with ``s = Σ_c p_c² - p_y``. Only ``p`` is kept for the backward
    pass and no one-hot target is materialised.
    """

    @staticmethod
    def forward(ctx, z: Tensor, target: Tensor) -> Tensor:
        p = z.softmax(dim=-1)
        idx = target.unsqueeze(-1)
        sq = (p * p).sum(dim=-1)  # not linalg.vecdot, which CPU autocast runs in bfloat16
        py = p.gather(-1, idx).squeeze(-1)
        ctx.save_for_backward(p, target, sq - py)
        return sq - 2.0 * py + 1.0

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        p, target, centre = ctx.saved_tensors
        g2 = (2.0 * grad_out).unsqueeze(-1)
        idx = target.unsqueeze(-1)
        py = p.gather(-1, idx)
        grad = p.sub(centre.unsqueeze(-1)).mul_(p).mul_(g2)  # 2 p_c (p_c - Σp² + p_y)
        return grad.scatter_add_(-1, idx, -py * g2), None


__all__ = ["BrierLoss", "ElementwisePenaltyLoss", "MSELoss"]
