"""Asymmetric loss (ASL) for multi-label classification and the one-vs-rest view of single-label."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import check_range
from lossbench.losses.base import BenchLoss, SigmoidOutputs
from lossbench.losses.focal import sigmoid_focal_, sigmoid_focal_grad_
from lossbench.losses.targets import is_multi_hot, positive_mask


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _negative_term(z: Tensor, gamma: float, clip: float) -> Tensor:
    """``-log(1 - p_m) p_m^γ`` elementwise, ``p_m = max(σ(z) - m, 0)``; at most two new tensors."""
    if clip == 0.0:
        return sigmoid_focal_(z.clone(), gamma)  # softplus(z) σ(z)^γ
    log_a = torch.sigmoid(-z).add_(clip).clamp_max_(1.0).log_()  # log(1 - p_m), 0 where p ≤ m
    if gamma != 0.0:
        log_a.mul_(torch.sigmoid(z).sub_(clip).clamp_min_(torch.finfo(z.dtype).tiny).pow_(gamma))
    return log_a.neg_()


def _negative_grad(z: Tensor, gamma: float, clip: float) -> Tensor:
    """d/dz of :func:`_negative_term`; at most three ``[N, C]`` tensors, the last one the result."""
    if clip == 0.0:
        return sigmoid_focal_grad_(z.clone(), gamma)
    # with p = σ(z), q = 1 - p, a = q + m, p_m = p - m (where p > m; 0 elsewhere):
    # d/dz = p q p_m^{γ-1} [p_m / a - γ log a]
    tiny = torch.finfo(z.dtype).tiny
    pm = torch.sigmoid(z).sub_(clip).clamp_min_(tiny)
    t = torch.sigmoid(-z).add_(clip)  # a
    g = t.clamp_max(1.0).log_().mul_(-gamma).addcdiv_(pm, t)
    g.mul_(t.copy_(z).neg_().sigmoid_())  # q
    g.mul_(t.copy_(z).sigmoid_())  # p
    del t
    g.mul_(pm.pow_(gamma - 1.0))
    del pm
    return g.masked_fill_(z <= _logit(clip), 0.0)


def _positive_term(z: Tensor, gamma: float) -> Tensor:
    """``-log σ(z) (1 - σ(z))^γ``."""
    return sigmoid_focal_(z.neg(), gamma)


def _positive_grad(z: Tensor, gamma: float) -> Tensor:
    """d/dz of :func:`_positive_term`, ``-σ(-z)^γ [σ(-z) + γ softplus(-z) σ(z)]``; at most two new tensors."""
    if gamma == 0.0:
        return z.neg().sigmoid_().neg_()
    g = F.softplus(z.neg())
    t = torch.sigmoid(z)
    g.mul_(t).mul_(gamma)
    t.copy_(z).neg_().sigmoid_()  # σ(-z)
    g.add_(t).mul_(t.pow_(gamma))
    return g.neg_()


class _AsymmetricFn(torch.autograd.Function):
    """Fused ASL per sample with a recomputing backward. ``target`` is one class index per row over C > 1
    logits (the negative term runs over ``[N, C]``, the positive one only over the targets' logits), or
    elementwise (a binary ``[N]`` target with one logit, or a multi-hot ``[N, L]`` target): both terms run
    over ``[N, L]`` and a mask picks each element's. At most three ``[N, C]`` tensors live at once."""

    @staticmethod
    def forward(ctx, z: Tensor, target: Tensor, gamma_pos: float, gamma_neg: float, clip: float) -> Tensor:
        pos = positive_mask(target, z)
        ctx.save_for_backward(z, target if pos is None else pos)
        ctx.params = (gamma_pos, gamma_neg, clip, pos is not None)
        neg = _negative_term(z, gamma_neg, clip)
        if pos is not None:
            return torch.where(pos, _positive_term(z, gamma_pos), neg, out=neg).sum(dim=-1)
        idx = target.unsqueeze(-1)
        zy = z.gather(-1, idx)
        # the target's own negative term is zeroed, not subtracted: a large one would cancel the others
        out = neg.scatter_(-1, idx, 0.0).sum(dim=-1, keepdim=True) + _positive_term(zy, gamma_pos)
        return out.squeeze(-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        z, target = ctx.saved_tensors
        gamma_pos, gamma_neg, clip, elementwise = ctx.params
        g = _negative_grad(z, gamma_neg, clip)
        if elementwise:
            torch.where(target, _positive_grad(z, gamma_pos), g, out=g)
        else:
            idx = target.unsqueeze(-1)
            g.scatter_(-1, idx, _positive_grad(z.gather(-1, idx), gamma_pos))
        return g.mul_(grad_out.unsqueeze(-1)), None, None, None, None


class AsymmetricLoss(SigmoidOutputs, BenchLoss):
    r"""Asymmetric loss (ASL): focal-style down-weighting with separate exponents and a probability margin.

    Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021.

    .. math::
        \ell(z, t) = -\sum_c \Big[t_c\,(1-p_c)^{\gamma_+}\log p_c
        + (1-t_c)\,p_{m,c}^{\gamma_-}\log(1-p_{m,c})\Big],\quad
        p = \sigma(z),\ p_m = \max(p - m, 0)

    with ``t = onehot(y)`` (binary data: one logit, ``t = y``; multi-label: ``t`` is the multi-hot target
    ``[N, L]``, the paper's setting), as the authors' ``AsymmetricLossOptimized`` computes it (their
    ``eps`` clamp of the logarithms aside). ``log p`` is ``logsigmoid(z)`` and
    ``log(1 - p_m) = log(min(σ(-z) + m, 1))``, so the loss is finite for any logits; ``p_m`` is floored at
    the smallest normal number to keep gradients finite for exponents below one. A fused autograd function
    with a hand-written, recomputing backward keeps at most three extra ``[N, C]`` tensors alive; on class
    indices the positive term is evaluated only at the targets' logits.
    ``γ_+ = γ_- = m = 0`` is BCE (one-vs-rest or per label). Task contract as for ``bce``.

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
        target = target if is_multi_hot(target) else target.long()
        return _AsymmetricFn.apply(outputs, target, self.gamma_pos, self.gamma_neg, self.clip)

    def extra_repr(self) -> str:
        params = f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}"
        return f"{params}, {super().extra_repr()}"
