"""Regression penalties ``ρ`` of the residual ``r = output - target``, averaged over targets.

All serve regression only, except Huber, which like MSE also serves classification on one-hot targets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import ConfigError, check_range
from lossbench.losses.base import BenchLoss, Task
from lossbench.losses.square import ElementwisePenaltyLoss
from lossbench.losses.targets import as_columns


class _RegressionLoss(BenchLoss):
    """Per sample: ``mean_t ρ(o_t - y_t)`` over the ``T`` targets. Serves regression only."""

    tasks = frozenset({Task.REGRESSION})

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        outputs, target = as_columns(outputs, target)
        return self.penalty(outputs, target).flatten(1).mean(dim=-1)


class _ResidualFn(torch.autograd.Function):
    """Per sample ``mean_t ρ(o_t - y_t)`` for a loss with in-place ``rho_``/``drho_``; recomputing backward.

    Only the inputs are kept for the backward pass, and the penalty and its derivative are evaluated in
    place on one residual tensor (plus at most one temporary), so no loss needs more than two extra
    ``[N, T]`` tensors at any time.
    """

    @staticmethod
    def forward(ctx, outputs: Tensor, target: Tensor, loss: _FusedRegressionLoss) -> Tensor:
        ctx.save_for_backward(outputs, target)
        ctx.loss = loss
        return loss.rho_(outputs - target).flatten(1).mean(dim=-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        outputs, target = ctx.saved_tensors
        d = ctx.loss.drho_(outputs - target)
        per_element = outputs[0].numel() if outputs.ndim > 1 else 1
        scale = (grad_out / per_element).reshape(-1, *([1] * (outputs.ndim - 1)))
        grad = d.mul_(scale)  # dℓ/do; dℓ/dy = -dℓ/do, since ρ depends on o - y only
        wants_outputs, wants_target = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        target_grad = (-grad if wants_outputs else grad.neg_()) if wants_target else None
        return (grad if wants_outputs else None), target_grad, None


class _FusedRegressionLoss(_RegressionLoss):
    """A regression loss given by an in-place penalty ``rho_(r)`` and its derivative ``drho_(r)``."""

    def rho_(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    def drho_(self, r: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        return self.rho_(outputs - target)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        return _ResidualFn.apply(*as_columns(outputs, target), self)


class L1Loss(_RegressionLoss):
    r"""Mean absolute error: the Laplace likelihood's loss, whose minimiser is the conditional median.

    .. math::
        \rho(r) = |r|

    Least absolute deviations; the median case (q = ½) of the quantile loss of Koenker & Bassett,
    "Regression Quantiles", Econometrica 1978.
    """

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(outputs, target, reduction="none")


class HuberLoss(ElementwisePenaltyLoss):
    r"""Huber loss (Huber, "Robust Estimation of a Location Parameter", Annals of Mathematical Statistics
    1964).

    .. math::
        \rho_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\ \delta(|r| - \tfrac12\delta)
        & \text{otherwise}\end{cases}

    Quadratic for small residuals (→ MSE/2), linear for large ones (→ δ|r|), so outliers pull less. Like
    MSE it also serves classification, on one-hot targets (:class:`ElementwisePenaltyLoss`).

    Args:
        delta: threshold ``δ > 0`` between the quadratic and linear parts.
        rescale_k: classification: weight ``k`` of the true class's term (Hui & Belkin's rescaling).
        rescale_m: classification: target ``M`` of the true class's output.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(
        self, delta: float = 1.0, rescale_k: float = 1.0, rescale_m: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__(rescale_k=rescale_k, rescale_m=rescale_m, reduction=reduction)
        self.delta = float(check_range("delta", delta, 0.0, low_inclusive=False))

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(outputs, target, reduction="none", delta=self.delta)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, {super().extra_repr()}"


class SmoothL1Loss(_RegressionLoss):
    r"""Smooth L1 (Girshick, "Fast R-CNN", ICCV 2015), torch semantics.

    .. math::
        \rho_\beta(r) = \begin{cases} \tfrac{r^2}{2\beta} & |r| < \beta \\ |r| - \tfrac{\beta}{2}
        & \text{otherwise}\end{cases}

    Equals Huber(δ=β)/β; ``β = 0`` is L1.

    Args:
        beta: threshold ``β ≥ 0``.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.beta = float(check_range("beta", beta, 0.0))

    def penalty(self, outputs: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(outputs, target, reduction="none", beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, {super().extra_repr()}"


_LOG2 = math.log(2.0)


class LogCoshLoss(_FusedRegressionLoss):
    r"""Log-cosh loss, :math:`\rho(r) = \log\cosh r`.

    ≈ r²/2 near 0, ≈ |r| - log 2 far out; gradient ``tanh r``.

    Computed as ``log1p(2 sinh²(r/2))`` (``cosh r − 1`` without cancellation) for ``|r| < 20`` and as
    ``|r| + softplus(-2|r|) - log 2`` beyond, so it neither overflows nor cancels (that form alone gave 0
    at r = 1e-4 in float32). A smooth robust penalty: Chen et al., "Log Hyperbolic Cosine Loss Improves
    Variational Auto-Encoder", OpenReview (ICLR 2019 submission).
    """

    def rho_(self, r: Tensor) -> Tensor:
        a = r.abs_()
        near = a.mul(0.5).sinh_().square_().mul_(2.0).log1p_()
        far = a.add(a.mul(-2.0).exp_().log1p_()).sub_(_LOG2)
        return torch.where(a < 20.0, near, far)

    def drho_(self, r: Tensor) -> Tensor:
        return r.tanh_()


class QuantileLoss(_FusedRegressionLoss):
    r"""Quantile (pinball) loss (Koenker & Bassett, "Regression Quantiles", Econometrica 1978).

    .. math::
        \rho_q(u) = \max(q\,u,\ (q-1)\,u),\qquad u = y - o

    Its minimiser is the conditional ``q``-quantile; ``q = 0.5`` is half the L1 loss.

    Args:
        q: quantile ``q ∈ (0, 1)``.
    """

    def __init__(self, q: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.q = float(check_range("q", q, 0.0, 1.0, low_inclusive=False, high_inclusive=False))

    def rho_(self, r: Tensor) -> Tensor:  # max(q u, (q-1) u) with u = -r, as |r|/2 + (1/2 - q) r
        return r.abs().mul_(0.5).add_(r, alpha=0.5 - self.q)

    def drho_(self, r: Tensor) -> Tensor:  # 1 - q above the target, -q below
        return r.sign_().mul_(0.5).add_(0.5 - self.q)

    def extra_repr(self) -> str:
        return f"q={self.q}, {super().extra_repr()}"


class CauchyLoss(_FusedRegressionLoss):
    r"""Cauchy (Lorentzian) loss, :math:`\rho_c(r) = \tfrac{c^2}{2}\log\big(1 + (r/c)^2\big)`.

    A redescending robust loss (Black & Anandan, "The Robust Estimation of Multiple Motions", CVIU 1996);
    ``c²/2`` times Barron's loss with ``α = 0`` and scale ``c/√2``.

    Args:
        scale: ``c > 0``.
    """

    def __init__(self, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.scale = float(check_range("scale", scale, 0.0, low_inclusive=False))

    def rho_(self, r: Tensor) -> Tensor:
        c = self.scale
        return _log1p_square(r.div_(c), 1.0).mul_(0.5 * c * c)

    def drho_(self, r: Tensor) -> Tensor:  # r / (1 + (r/c)²) = c / (u + 1/u) with u = r/c, for |u| > 1
        c = self.scale
        u = r.div_(c)
        near = u.abs() <= 1.0
        far = u.where(~near, 1.0)  # 1 where unused: no 1/0
        inner = u / (1.0 + u.where(near, 0.0).square())
        return torch.where(near, inner, far.add(far.reciprocal()).reciprocal()).mul_(c)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, {super().extra_repr()}"


def _log1p_square(x: Tensor, b: float) -> Tensor:
    """:math:`\\log(1 + x^2 / b)` without forming :math:`x^2`, which overflows float32 beyond
    :math:`|x| \\approx 1.8 \\cdot 10^{19}` (the loss then read inf and its gradient 0): with
    :math:`t = |x| / \\sqrt{b}`, :math:`\\log(1 + t^2)` where :math:`t \\le 1` and
    :math:`2 \\log t + \\log(1 + t^{-2})` beyond, each exact to rounding and finite."""
    t = x.abs() / math.sqrt(b)
    near = t <= 1.0
    inner = torch.log1p(t.where(near, 0.0).square())
    far = t.where(~near, 1.0)  # 1 where unused: no log(0), no 1/0 (nor their gradients)
    return torch.where(near, inner, 2.0 * far.log() + torch.log1p(far.reciprocal().square()))


class BarronLoss(_FusedRegressionLoss):
    r"""Barron's general and adaptive robust loss, with fixed shape ``α`` and scale ``c``.

    Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.

    .. math::
        \rho(r, \alpha, c) = \frac{|\alpha - 2|}{\alpha}
        \left[\left(\frac{(r/c)^2}{|\alpha-2|} + 1\right)^{\alpha/2} - 1\right]

    with its limits: ``α = 2`` → ``½(r/c)²`` (L2), ``α = 0`` → ``log(½(r/c)² + 1)`` (Cauchy),
    ``α = -∞`` → ``1 - exp(-½(r/c)²)`` (Welsch); ``α = 1`` is pseudo-Huber/Charbonnier, ``α = -2``
    Geman-McClure. The general case uses ``expm1``/``log1p`` for accuracy.

    Args:
        alpha: shape ``α``, a finite number or ``-inf``.
        scale: ``c > 0``.
    """

    def __init__(self, alpha: float = 1.0, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise ConfigError(f"alpha={alpha!r} has the wrong type: expected a number or -inf")
        alpha = float(alpha)
        if math.isnan(alpha) or alpha == math.inf:
            raise ConfigError(f"alpha={alpha!r} is out of range: expected a finite value or -inf")
        self.alpha = alpha
        self.scale = float(check_range("scale", scale, 0.0, low_inclusive=False))

    def rho_(self, r: Tensor) -> Tensor:
        a = self.alpha
        x = r.div_(self.scale)
        if a == 2.0:
            return x.square_().mul_(0.5)
        if a == 0.0:
            return _log1p_square(x, 2.0)
        if a == -math.inf:
            return x.square_().mul_(-0.5).expm1_().neg_()
        b = abs(a - 2.0)
        return _log1p_square(x, b).mul_(0.5 * a).expm1_().mul_(b / a)

    def drho_(self, r: Tensor) -> Tensor:  # (x / c) (x²/|α-2| + 1)^{α/2 - 1}, x = r / c
        a, c = self.alpha, self.scale
        x = r.div_(c)
        if a == 2.0:
            return x.div_(c)
        t = x.square()
        if a == 0.0:
            t = _log1p_square(x, 2.0).neg_().exp_()
        elif a == -math.inf:
            t.mul_(-0.5).exp_()
        else:
            t = _log1p_square(x, abs(a - 2.0)).mul_(0.5 * a - 1.0).exp_()
        return x.mul_(t).div_(c)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, scale={self.scale}, {super().extra_repr()}"
