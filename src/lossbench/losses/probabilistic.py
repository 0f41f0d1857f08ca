"""Distributional regression losses: the model predicts a distribution per target, not only a point.

A loss with ``K`` parameters per target needs ``K·T`` outputs for ``T`` targets, laid out
parameter-major: ``outputs[:, k*T:(k+1)*T]`` is parameter ``k`` of all ``T`` targets. Targets are
``[N, T]`` (or ``[N]`` for one target); :meth:`per_sample` is the mean over the targets of each element's
loss. :meth:`predictive` describes the same distribution, with the same parametrisation, for the metrics.

Scale heads are ``softplus(raw) + floor`` (never ``exp(raw)``), so the loss and its gradients stay
finite for any finite outputs: with ``|outputs| ≤ 1e4``, ``|targets| ≤ 1e5`` and the default floors the
largest term is ``r²/σ²_min ≤ 1e16`` and the largest gradient ``r²/σ⁴_min ≤ 1e22`` (float32 reaches 3e38).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import ConfigError, check_range
from lossbench.losses.base import BenchLoss, Predictive, Task, upcast
from lossbench.losses.predictive import GaussianPredictive, LaplacePredictive, QuantilePredictive, pinball


class _DistributionalLoss(BenchLoss):
    """A regression loss on ``num_params`` outputs per target, scored through its :class:`Predictive`."""

    tasks = frozenset({Task.REGRESSION})
    num_params: int = 2

    def num_outputs(self, task: Task, num_classes: int | None, num_targets: int = 1) -> int:
        if Task(task) is Task.REGRESSION:
            return self.num_params * num_targets
        return super().num_outputs(task, num_classes, num_targets)

    def split(self, outputs: Tensor) -> Tensor:
        """Parameter-major outputs ``[N, K·T]`` as ``[N, K, T]``."""
        k = self.num_params
        if outputs.ndim != 2 or outputs.shape[-1] % k:
            raise ValueError(
                f"{type(self).__name__} needs outputs of shape [N, {k}·T] ({k} per target, parameter-major), "
                f"got {list(outputs.shape)}: build the model with num_outputs=loss.num_outputs(task, None, T)"
            )
        return outputs.reshape(outputs.shape[0], k, -1)

    def distribution(self, params: Tensor) -> Predictive:
        """The predictive distribution of the parameters ``[N, K, T]`` (differentiable)."""
        raise NotImplementedError

    def element_loss(self, dist: Predictive, target: Tensor) -> Tensor:
        raise NotImplementedError

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        params = self.split(outputs)
        same_rows = target.ndim > 0 and target.shape[0] == params.shape[0]
        if target.numel() != params[:, 0].numel() or not same_rows or target.ndim > 2:  # [T, N] misaligns
            raise ValueError(
                f"outputs of shape {list(outputs.shape)} ({self.num_params} per target) and targets of "
                f"shape {list(target.shape)} do not match: the model needs {self.num_params} outputs per "
                "target column"
            )
        target = target.to(params.dtype).reshape(params[:, 0].shape)
        return self.element_loss(self.distribution(params), target).mean(dim=-1)

    def predictive(self, outputs: Tensor) -> Predictive:
        """The predictive distribution of ``outputs`` (detached, at least float32), for scoring."""
        return self.distribution(self.split(upcast(outputs.detach())))

    def point_predictions(self, outputs: Tensor) -> Tensor:
        """The predictive distribution's point ``[N, T]`` (detached)."""
        return self.predictive(outputs).point


class _GaussianLoss(_DistributionalLoss):
    """Gaussian head: ``μ = o₀`` and ``σ² = softplus(o₁) + min_variance``."""

    def __init__(self, min_variance: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.min_variance = float(check_range("min_variance", min_variance, 0.0, low_inclusive=False))

    def distribution(self, params: Tensor) -> GaussianPredictive:
        return GaussianPredictive(params[:, 0], F.softplus(params[:, 1]) + self.min_variance)

    def extra_repr(self) -> str:
        return f"min_variance={self.min_variance}, {super().extra_repr()}"


class GaussianNLLLoss(_GaussianLoss):
    r"""Gaussian negative log-likelihood with a mean and a variance head (Nix & Weigend, "Estimating the
    Mean and Variance of the Target Probability Distribution", ICNN 1994).

    .. math::
        \ell = \tfrac12\left(\log 2\pi + \log\sigma^2 + \frac{(y-\mu)^2}{\sigma^2}\right),\qquad
        \sigma^2 = \operatorname{softplus}(o_1) + \sigma^2_{\min}

    The constant ``½ log 2π`` is included, so the value is the true NLL (``torch.nn.GaussianNLLLoss`` with
    ``full=True``). Two outputs per target: ``o₀ = μ`` and the raw variance ``o₁``.

    Args:
        min_variance: the variance floor ``σ²_min > 0``; it bounds the loss and its gradients.
    """

    def element_loss(self, dist: GaussianPredictive, target: Tensor) -> Tensor:
        return dist.nll(target)


class BetaNLLLoss(_GaussianLoss):
    r"""β-NLL (Seitzer et al., "On the Pitfalls of Heteroscedastic Uncertainty Estimation with
    Probabilistic Neural Networks", ICLR 2022): the Gaussian NLL weighted by the stopped variance.

    .. math::
        \ell = \lfloor\sigma^2\rfloor^{\beta}\cdot\tfrac12\left(\log 2\pi + \log\sigma^2
        + \frac{(y-\mu)^2}{\sigma^2}\right),\qquad \sigma^2 = \operatorname{softplus}(o_1) + \sigma^2_{\min}

    ``⌊·⌋`` stops the gradient, so the gradient is not the derivative of the value: ``β = 0`` is
    :class:`GaussianNLLLoss`, and at ``β = 1`` the gradient to the mean is ``μ - y``, that of
    ``½(μ - y)²`` (half the MSE's).

    Args:
        beta: ``β ∈ [0, 1]`` (the paper recommends 0.5).
        min_variance: the variance floor ``σ²_min > 0``.
    """

    def __init__(self, beta: float = 0.5, min_variance: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(min_variance, reduction)
        self.beta = float(check_range("beta", beta, 0.0, 1.0))

    def element_loss(self, dist: GaussianPredictive, target: Tensor) -> Tensor:
        nll = dist.nll(target)
        return nll * dist.var.detach().pow(self.beta) if self.beta else nll

    def extra_repr(self) -> str:
        return f"beta={self.beta}, {super().extra_repr()}"


class GaussianCRPSLoss(_GaussianLoss):
    r"""Closed-form CRPS of a Gaussian (Gneiting & Raftery, "Strictly Proper Scoring Rules, Prediction,
    and Estimation", JASA 2007).

    .. math::
        \ell = \sigma\left[z\,(2\Phi(z) - 1) + 2\varphi(z) - \tfrac{1}{\sqrt\pi}\right],\qquad
        z = \frac{y-\mu}{\sigma},\quad \sigma^2 = \operatorname{softplus}(o_1) + \sigma^2_{\min}

    A proper score in the units of the target; its gradients are bounded (``|∂ℓ/∂μ| ≤ 1``).

    Args:
        min_variance: the variance floor ``σ²_min > 0``.
    """

    def element_loss(self, dist: GaussianPredictive, target: Tensor) -> Tensor:
        return dist.crps(target)


class LaplaceNLLLoss(_DistributionalLoss):
    r"""Laplace negative log-likelihood with a location and a scale head (the heteroscedastic L1; e.g.
    Kendall & Gal, "What Uncertainties Do We Need in Bayesian Deep Learning for Computer Vision?",
    NeurIPS 2017).

    .. math::
        \ell = \log(2b) + \frac{|y-\mu|}{b},\qquad b = \operatorname{softplus}(o_1) + b_{\min}

    Two outputs per target: ``o₀ = μ`` (the median) and the raw scale ``o₁``.

    Args:
        min_scale: the scale floor ``b_min > 0``; it bounds the loss and its gradients.
    """

    def __init__(self, min_scale: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.min_scale = float(check_range("min_scale", min_scale, 0.0, low_inclusive=False))

    def distribution(self, params: Tensor) -> LaplacePredictive:
        return LaplacePredictive(params[:, 0], F.softplus(params[:, 1]) + self.min_scale)

    def element_loss(self, dist: LaplacePredictive, target: Tensor) -> Tensor:
        return dist.nll(target)

    def extra_repr(self) -> str:
        return f"min_scale={self.min_scale}, {super().extra_repr()}"


DEFAULT_QUANTILES = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)


def check_quantiles(quantiles: Iterable[float]) -> tuple[float, ...]:
    """At least one level, each in (0, 1), strictly increasing; else a ``ConfigError`` naming them."""
    if isinstance(quantiles, (str, bytes)) or not isinstance(quantiles, Iterable):
        raise ConfigError(f"quantiles={quantiles!r} has the wrong type: expected a list of levels in (0, 1)")
    levels = list(quantiles)
    shown = f"quantiles={levels!r}"
    if not levels:
        raise ConfigError(f"{shown} is empty: give at least one level in (0, 1)")
    for q in levels:
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 < q < 1.0:
            raise ConfigError(f"{shown} is out of range: every level must lie in (0, 1), got {q!r}")
    if any(b <= a for a, b in zip(levels[:-1], levels[1:], strict=True)):
        raise ConfigError(f"{shown} is not strictly increasing: list each level once, smallest first")
    return tuple(float(q) for q in levels)


class PinballLoss(_DistributionalLoss):
    r"""Multi-quantile pinball loss (Koenker & Bassett, "Regression Quantiles", Econometrica 1978) with a
    non-crossing cumulative head.

    .. math::
        \ell = \frac1K\sum_{k=1}^K \rho_{\tau_k}(y - q_k),\qquad \rho_\tau(u) = \max(\tau u, (\tau-1)u),
        \qquad q_1 = o_1,\quad q_k = q_{k-1} + \operatorname{softplus}(o_k)

    The ``K`` raw outputs per target become increasing quantiles by the cumulative head, so the
    quantiles never cross (they can tie only where softplus underflows). The point is the median.

    Args:
        quantiles: the increasing levels ``τ_1 < … < τ_K`` in (0, 1).
    """

    def __init__(self, quantiles: Iterable[float] = DEFAULT_QUANTILES, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.quantiles = check_quantiles(quantiles)
        self.num_params = len(self.quantiles)

    def distribution(self, params: Tensor) -> QuantilePredictive:
        steps = torch.cat([params[:, :1], F.softplus(params[:, 1:])], dim=1)
        return QuantilePredictive(self.quantiles, steps.cumsum(dim=1))

    def element_loss(self, dist: QuantilePredictive, target: Tensor) -> Tensor:
        levels = torch.tensor(self.quantiles, dtype=target.dtype, device=target.device)
        return pinball(levels, dist.quantiles, target).mean(dim=1)

    def extra_repr(self) -> str:
        return f"quantiles={list(self.quantiles)}, {super().extra_repr()}"
