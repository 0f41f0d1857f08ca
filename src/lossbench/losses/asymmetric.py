"""Asymmetric loss for the one-vs-rest / multi-label view."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_range
from lossbench.losses.base import BenchLoss, SigmoidOutputs, binary_targets


class AsymmetricLoss(SigmoidOutputs, BenchLoss):
    r"""Asymmetric loss (ASL): focal-style down-weighting with separate exponents and a probability margin.

    Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021.

    .. math::
        \ell(z, y) = -\sum_c \Big[t_c\,(1-p_c)^{\gamma_+}\log p_c
        + (1-t_c)\,p_{m,c}^{\gamma_-}\log(1-p_{m,c})\Big],\quad
        p = \sigma(z),\ p_m = \max(p - m, 0)

    with ``t = onehot(y)`` (binary data: one logit, ``t = y``). ``log p`` is ``logsigmoid(z)`` and
    ``log(1 - p_m) = log(min(σ(-z) + m, 1))``, so the loss is finite for any logits; the bases of the powers
    are floored at the smallest normal number to keep gradients finite for exponents below one.
    ``γ_+ = γ_- = m = 0`` is one-vs-rest BCE. Task contract as for ``bce``.

    Args:
        gamma_pos: ``γ_+ ≥ 0``.
        gamma_neg: ``γ_- ≥ 0``.
        clip: probability margin ``m ∈ [0, 1)`` shifting negatives.
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    def __init__(
        self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.gamma_pos = float(check_range("gamma_pos", gamma_pos, 0.0))
        self.gamma_neg = float(check_range("gamma_neg", gamma_neg, 0.0))
        self.clip = float(check_range("clip", clip, 0.0, 1.0, high_inclusive=False))

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        t = binary_targets(target, outputs)
        tiny = torch.finfo(outputs.dtype).tiny
        pos = F.logsigmoid(outputs)
        if self.gamma_pos != 0.0:
            pos = pos * torch.sigmoid(-outputs).clamp_min(tiny).pow(self.gamma_pos)
        if self.clip == 0.0:
            neg = F.logsigmoid(-outputs)
            p_m = torch.sigmoid(outputs)
        else:
            neg = torch.log((torch.sigmoid(-outputs) + self.clip).clamp_max(1.0))
            p_m = torch.sigmoid(outputs) - self.clip
        if self.gamma_neg != 0.0:
            neg = neg * p_m.clamp_min(tiny).pow(self.gamma_neg)
        return -torch.lerp(neg, pos, t).sum(dim=-1)

    def extra_repr(self) -> str:
        params = f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}"
        return f"{params}, {super().extra_repr()}"
