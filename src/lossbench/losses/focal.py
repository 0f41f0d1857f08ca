"""Softmax focal loss (multi-class)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_range
from lossbench.losses.base import BenchLoss


class FocalLoss(BenchLoss):
    r"""Multi-class focal loss on the softmax.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    .. math::
        \ell(z, y) = -\alpha_y\,(1 - p_y)^{\gamma} \log p_y,\qquad \log p = \operatorname{log\_softmax}(z)

    ``log p_y`` comes from ``log_softmax`` (never ``log`` of a probability) and ``1 - p_y`` from
    ``-expm1(log p_y)``, so the loss is finite for any logits; the modulating factor is clamped away from
    zero so the gradient stays finite for ``0 < γ < 1``. With ``γ = 0`` and no ``α`` it equals
    cross-entropy.

    Args:
        gamma: focusing parameter ``γ ≥ 0``.
        alpha: ``None``, a scalar weight, or one weight per class (``α_y`` is the target's).
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    def __init__(
        self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.gamma = float(check_range("gamma", gamma, 0.0))
        a = None if alpha is None else torch.as_tensor(alpha, dtype=torch.float)
        if a is not None and bool((a < 0).any()):
            check_range("alpha", float(a.min()), 0.0)
        self.register_buffer("alpha", a)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        logpt = F.log_softmax(outputs, dim=-1).gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
        loss = -logpt
        if self.gamma != 0.0:
            one_minus_pt = (-torch.expm1(logpt)).clamp_min(torch.finfo(logpt.dtype).tiny)
            loss = loss * one_minus_pt.pow(self.gamma)
        if self.alpha is not None:
            alpha = self.alpha.to(outputs.dtype)
            loss = loss * (alpha[target] if alpha.ndim else alpha)
        return loss

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, {super().extra_repr()}"
