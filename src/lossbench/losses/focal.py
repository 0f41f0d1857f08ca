"""Focal losses: softmax multi-class (Lin et al. 2017) and sigmoid (torchvision semantics), one-vs-rest or
multi-label."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import ConfigError, check_range
from lossbench.losses.base import BenchLoss, SigmoidOutputs, Task
from lossbench.losses.targets import checked_weights, is_multi_hot, positive_mask


def focal_term(logpt: Tensor, gamma: float) -> Tensor:
    r"""``-(1 - p)^γ log p`` from ``log p`` (finite for any ``log p ≤ 0``, stable gradient for ``0 < γ < 1``).

    ``1 - p`` is ``-expm1(log p)`` (exact even when ``p → 1``) and is floored at the dtype's smallest
    normal number, so ``(1-p)^{γ-1}`` in the gradient stays finite when ``γ < 1``.
    """
    loss = -logpt
    if gamma != 0.0:
        one_minus_pt = (-torch.expm1(logpt)).clamp_min(torch.finfo(logpt.dtype).tiny)
        loss = loss * one_minus_pt.pow(gamma)
    return loss


class _SoftmaxFocalFn(torch.autograd.Function):
    r"""Fused softmax focal loss per sample, ``-w (1 - p_y)^γ log p_y``, with a hand-written backward.

    With ``l = log p_y`` and ``u = 1 - p_y = -expm1(l)`` (floored at the smallest normal number):
    ``dℓ/dl = -u^γ + γ l p_y u^{γ-1}`` and ``dℓ/dz = dℓ/dl (e_y - softmax(z))``. Only ``log_softmax`` is
    kept for the backward pass (as cross-entropy does), which builds the gradient in one ``[N, C]`` tensor.
    """

    @staticmethod
    def forward(ctx, z: Tensor, target: Tensor, gamma: float, weight: Tensor | None) -> Tensor:
        lsm = F.log_softmax(z, dim=-1)
        idx = target.unsqueeze(-1)
        logpt = lsm.gather(-1, idx).squeeze(-1)
        if gamma == 0.0:
            loss, dl = -logpt, torch.full_like(logpt, -1.0)
        else:
            u = (-torch.expm1(logpt)).clamp_min(torch.finfo(logpt.dtype).tiny)
            ug = u.pow(gamma)
            loss = -logpt * ug
            dl = gamma * logpt * logpt.exp() * ug / u - ug
        if weight is not None:
            loss, dl = loss * weight, dl * weight
        ctx.save_for_backward(lsm, target, dl)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        lsm, target, dl = ctx.saved_tensors
        coef = (dl * grad_out).unsqueeze(-1)
        grad = lsm.exp().mul_(coef.neg())
        grad.scatter_add_(-1, target.unsqueeze(-1), coef)
        return grad, None, None, None


class FocalLoss(BenchLoss):
    r"""Multi-class focal loss on the softmax.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    .. math::
        \ell(z, y) = -\alpha_y\,(1 - p_y)^{\gamma} \log p_y,\qquad \log p = \operatorname{log\_softmax}(z)

    ``log p_y`` comes from ``log_softmax`` (never ``log`` of a probability) and ``1 - p_y`` from
    ``-expm1(log p_y)``, so the loss is finite for any logits; the modulating factor is clamped away from
    zero so the gradient stays finite for ``0 < γ < 1``. With ``γ = 0`` and no ``α`` it equals
    cross-entropy. Only ``log_softmax`` touches ``[N, C]`` in the forward pass; the rest works on the
    gathered ``[N]`` values, and a fused backward builds the gradient in place, so it costs about as much
    as cross-entropy (see ``scripts/bench_losses.py``). Probabilities: softmax; predictions: argmax.

    Args:
        gamma: focusing parameter ``γ ≥ 0``.
        alpha: ``None``, a scalar weight, or one weight per class (``α_y`` is the target's), each ``≥ 0``.
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    def __init__(
        self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.gamma = float(check_range("gamma", gamma, 0.0))
        self.register_buffer("alpha", checked_weights("alpha", alpha))

    def check_task(self, task: Task, num_classes: int | None = None) -> None:
        super().check_task(task, num_classes)
        if self.alpha is not None and self.alpha.ndim == 1 and len(self.alpha) != num_classes:
            raise ConfigError(
                f"loss.alpha has {len(self.alpha)} weights but the data set has {num_classes} classes: give "
                "one weight, or one per class"
            )

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        target = target.long()
        weight = None
        if self.alpha is not None:
            alpha = self.alpha.to(outputs.dtype)
            weight = alpha[target] if alpha.ndim else alpha.expand(len(target))
        return _SoftmaxFocalFn.apply(outputs, target, self.gamma, weight)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, {super().extra_repr()}"


def _signed_logits(z: Tensor, target: Tensor, pos: Tensor | None) -> Tensor:
    """``s = (1 - 2t) z``: the logit for negatives, its negation for positives (one new tensor). ``pos`` is
    the elementwise positive mask, or ``None`` when ``target`` holds one class index per row."""
    if pos is not None:
        return torch.where(pos, -z, z)
    s = z.clone()
    idx = target.unsqueeze(-1)
    return s.scatter_(-1, idx, z.gather(-1, idx).neg_())


def sigmoid_focal_(s: Tensor, gamma: float) -> Tensor:
    """``f(s) = softplus(s) σ(s)^γ`` (``-log σ(-s) (1-σ(-s))^γ``), overwriting ``s``; one new tensor."""
    f = F.softplus(s)
    if gamma != 0.0:
        f.mul_(s.sigmoid_().pow_(gamma))
    return f


def sigmoid_focal_grad_(s: Tensor, gamma: float) -> Tensor:
    """``f'(s) = σ(s)^γ [σ(s) + γ softplus(s) (1 - σ(s))]``, overwriting ``s``; at most two new tensors."""
    sig = torch.sigmoid(s)
    if gamma == 0.0:
        return sig
    g = F.softplus(s)
    one_minus_sig = s.neg_().sigmoid_()
    g.mul_(one_minus_sig).mul_(gamma).add_(sig)
    del one_minus_sig
    return g.mul_(sig.pow_(gamma))


def _alpha_weights(alpha: float | None) -> tuple[float, float]:
    """(weight of the negative terms, weight of the positive term)."""
    return (1.0, 1.0) if alpha is None else (1.0 - alpha, alpha)


class _SigmoidFocalFn(torch.autograd.Function):
    r"""Fused sigmoid focal loss, per sample: ``Σ_c w_c α_t f(s_c)``, ``f(s) = softplus(s) σ(s)^γ``.

    With ``s = (1 - 2t) z``: ``-log p_t = softplus(s)`` and ``1 - p_t = σ(s)``. ``target`` is either one
    class index per row over C > 1 logits (one-vs-rest, ``t = onehot(y)``), or elementwise: a binary
    ``[N]`` target with a single logit, or a multi-hot ``[N, L]`` target (``t = y``). ``label_weight``
    (``[L]``, elementwise path only) weights each label's term. The forward saves only the logits and the
    target (a bool mask on the elementwise path); the backward recomputes, with
    ``f'(s) = σ(s)^γ [σ(s) + γ softplus(s) (1 - σ(s))]``. At most three ``[N, C]`` temporaries live at
    once, against about eight for the unfused expression.
    """

    @staticmethod
    def forward(
        ctx, z: Tensor, target: Tensor, gamma: float, alpha: float | None, label_weight: Tensor | None = None
    ) -> Tensor:
        pos = positive_mask(target, z)
        if pos is None and label_weight is not None:
            raise ValueError("label_weight needs elementwise (binary or multi-hot) targets")
        ctx.save_for_backward(z, target if pos is None else pos, label_weight)
        ctx.gamma, ctx.alpha, ctx.elementwise = gamma, alpha, pos is not None
        f = sigmoid_focal_(_signed_logits(z, target, pos), gamma)
        neg_w, pos_w = _alpha_weights(alpha)
        if pos is not None:
            if alpha is not None:
                f.mul_(torch.where(pos, f.new_tensor(pos_w), f.new_tensor(neg_w)))
            if label_weight is not None:
                f.mul_(label_weight)
            return f.sum(dim=-1)
        loss = f.sum(dim=-1)
        if alpha is not None:
            fy = f.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            loss = loss.mul_(neg_w).add_(fy, alpha=pos_w - neg_w)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        z, target, label_weight = ctx.saved_tensors
        gamma, alpha = ctx.gamma, ctx.alpha
        pos = target if ctx.elementwise else None
        g = sigmoid_focal_grad_(_signed_logits(z, target, pos), gamma)
        # dℓ/dz = f'(s) (1 - 2t) α_t w: negatives keep the sign, positives flip it
        neg_w, pos_w = _alpha_weights(alpha)
        go = grad_out.unsqueeze(-1)
        if pos is not None:
            g.mul_(torch.where(pos, g.new_tensor(-pos_w), g.new_tensor(neg_w))).mul_(go)
            if label_weight is not None:
                g.mul_(label_weight)
        else:
            idx = target.unsqueeze(-1)
            gy = g.gather(-1, idx).mul_(go).mul_(-pos_w)
            g.mul_(go)
            if neg_w != 1.0:
                g.mul_(neg_w)
            g.scatter_(-1, idx, gy)
        return g, None, None, None, None


class SigmoidFocalLoss(SigmoidOutputs, BenchLoss):
    r"""Sigmoid focal loss (one-vs-rest, or per label) with the semantics of
    :func:`torchvision.ops.sigmoid_focal_loss`.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (the RetinaNet form).

    .. math::
        \ell(z, t) = \sum_c \alpha_t\,(1 - p_t)^{\gamma}\,\mathrm{BCE}(z_c, t_c),\quad
        p_t = \begin{cases}\sigma(z_c) & t_c = 1\\ 1-\sigma(z_c) & t_c = 0\end{cases},\quad
        \alpha_t = \begin{cases}\alpha & t_c = 1\\ 1-\alpha & t_c = 0\end{cases}

    with ``t = onehot(y)`` (binary data: one logit, ``t = y``; multi-label: ``t`` is the multi-hot target
    ``[N, L]``). Per sample the loss sums over classes (labels); ``mean`` averages over samples, i.e.
    torchvision's ``sum`` divided by ``N``. ``alpha=None`` switches the weighting off (torchvision's
    ``alpha < 0``). Computed in one fused, recomputing autograd function (``BCE = softplus(s)``,
    ``1 - p_t = σ(s)``, ``s = (1-2t) z``). Task contract as for ``bce``.

    Args:
        gamma: focusing parameter ``γ ≥ 0``.
        alpha: weight ``α ∈ [0, 1]`` of the positive class term, or ``None``.
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.gamma = float(check_range("gamma", gamma, 0.0))
        self.alpha = None if alpha is None else float(check_range("alpha", alpha, 0.0, 1.0))

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        target = target if is_multi_hot(target) else target.long()
        return _SigmoidFocalFn.apply(outputs, target, self.gamma, self.alpha)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, {super().extra_repr()}"
