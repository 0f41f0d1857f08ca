"""Losses robust to label noise: generalized cross-entropy and symmetric cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import ConfigError, check_range
from lossbench.losses.base import BenchLoss


def _log_pt(outputs: Tensor, target: Tensor) -> Tensor:
    return F.log_softmax(outputs, dim=-1).gather(-1, target.long().unsqueeze(-1)).squeeze(-1)


class GCELoss(BenchLoss):
    r"""Generalized cross-entropy (the ``L_q`` loss).

    Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy
    Labels", NeurIPS 2018.

    .. math::
        \ell(z, y) = \frac{1 - p_y^{\,q}}{q} = -\frac{\operatorname{expm1}(q \log p_y)}{q}

    ``q → 0`` gives cross-entropy, ``q = 1`` the (noise-robust) mean absolute error ``1 - p_y``. Computed
    from ``log_softmax`` so it is finite for any logits. Probabilities: softmax; predictions: argmax.

    Args:
        q: ``q ∈ (0, 1]``.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(self, q: float = 0.7, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.q = float(check_range("q", q, 0.0, 1.0, low_inclusive=False))

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        return torch.expm1(self.q * _log_pt(outputs, target)) / (-self.q)

    def extra_repr(self) -> str:
        return f"q={self.q}, {super().extra_repr()}"


class SCELoss(BenchLoss):
    r"""Symmetric cross-entropy: cross-entropy plus reverse cross-entropy.

    Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels", ICCV 2019.

    .. math::
        \ell(z, y) = \alpha\,\big(-\log p_y\big) + \beta\,\mathrm{RCE},\qquad
        \mathrm{RCE} = -\textstyle\sum_c p_c \log q_c = -A\,(1 - p_y)

    where ``q`` is the one-hot label with ``log 0`` replaced by the constant ``A < 0`` (the paper: ``A = -4``;
    the authors' code clamps at ``1e-4``, i.e. ``A = log 1e-4``). Probabilities: softmax; predictions: argmax.

    Args:
        alpha: weight ``α ≥ 0`` of cross-entropy.
        beta: weight ``β ≥ 0`` of reverse cross-entropy.
        log_zero: ``A < 0``.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(
        self, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.alpha = float(check_range("alpha", alpha, 0.0))
        self.beta = float(check_range("beta", beta, 0.0))
        self.log_zero = float(check_range("log_zero", log_zero, high=0.0, high_inclusive=False))
        if self.alpha == 0.0 and self.beta == 0.0:
            raise ConfigError(
                "alpha=0 with beta=0 makes the loss 0 for every sample: set alpha or beta above 0"
            )

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        logpt = _log_pt(outputs, target)
        # RCE = -A (1 - p_y) = A expm1(log p_y)
        return -self.alpha * logpt + (self.beta * self.log_zero) * torch.expm1(logpt)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, log_zero={self.log_zero}, {super().extra_repr()}"
