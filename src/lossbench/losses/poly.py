"""PolyLoss, the Poly-1 form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_range
from lossbench.losses.base import BenchLoss


class Poly1Loss(BenchLoss):
    r"""Poly-1 cross-entropy.

    Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions", ICLR 2022.

    .. math::
        \ell(z, y) = -\log p_y + \varepsilon\,(1 - p_y),\qquad \log p = \operatorname{log\_softmax}(z)

    The extra term perturbs the leading coefficient of cross-entropy's expansion ``Σ_j (1-p_y)^j / j``;
    ``ε = 0`` is cross-entropy, ``ε = -1`` removes the first term. ``1 - p_y = -expm1(log p_y)``.
    Probabilities: softmax; predictions: argmax.

    Args:
        epsilon: ``ε ≥ -1``.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(self, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.epsilon = float(check_range("epsilon", epsilon, -1.0))

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        logpt = F.log_softmax(outputs, dim=-1).gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
        return -logpt - self.epsilon * torch.expm1(logpt)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, {super().extra_repr()}"
