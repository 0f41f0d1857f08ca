"""Distributional regression losses (losses/probabilistic.py) against independent float64 references."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from scipy import integrate, stats

from lossbench.config import CONFIG_DIR
from lossbench.errors import ConfigError
from lossbench.losses.base import Task
from lossbench.losses.probabilistic import (
    DEFAULT_QUANTILES,
    BetaNLLLoss,
    GaussianCRPSLoss,
    GaussianNLLLoss,
    GaussianPredictive,
    LaplaceNLLLoss,
    LaplacePredictive,
    PinballLoss,
    QuantilePredictive,
)

NAMES = ["gaussian_nll", "beta_nll", "laplace_nll", "crps_gaussian", "pinball"]
f64 = torch.float64


def load(name: str, **overrides):
    return instantiate(OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml"), overrides))


def inv_softplus(v: torch.Tensor) -> torch.Tensor:
    return v.expm1().log()


def two_param(n: int, t: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Outputs ``[N, 2T]`` (location, raw scale), the location, the raw scale and targets, in float64."""
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(n, t, generator=g, dtype=f64) * 2
    raw = torch.randn(n, t, generator=g, dtype=f64) * 2
    y = loc + torch.randn(n, t, generator=g, dtype=f64) * 3
    return torch.cat([loc, raw], dim=1), loc, raw, y


def width(loss, t: int) -> int:
    return loss.num_outputs(Task.REGRESSION, None, t)


# --- the configs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_config_lists_every_constructor_argument(name):
    cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    params = set(inspect.signature(get_class(cfg._target_).__init__).parameters) - {"self"}
    assert set(cfg) - {"_target_"} == params
    loss = instantiate(cfg)
    assert loss.tasks == frozenset({Task.REGRESSION}) and loss.reduction == "mean"


def test_num_outputs_and_parameter_major_layout():
    assert width(load("gaussian_nll"), 3) == 6 and width(load("laplace_nll"), 1) == 2
    assert width(load("pinball"), 3) == 27 and width(load("pinball", quantiles=[0.5]), 2) == 2
    out, loc, _, _ = two_param(4, 3)
    for name in ["gaussian_nll", "beta_nll", "laplace_nll", "crps_gaussian"]:
        assert torch.equal(load(name).point_predictions(out), loc)
    q = load("pinball", quantiles=[0.25, 0.5]).predictive(out).quantiles
    assert torch.equal(q[:, 0], out[:, :3]) and torch.allclose(q[:, 1], loc + F.softplus(out[:, 3:]))


# --- values against references ----------------------------------------------------------------------
def test_gaussian_nll_is_torch_full_nll_and_normal_log_prob():
    out, mu, raw, y = two_param(50, 3)
    var = F.softplus(raw) + 1e-6
    ref = torch.nn.GaussianNLLLoss(full=True, reduction="none", eps=1e-12)(mu, y, var)
    assert torch.allclose(load("gaussian_nll", reduction="none")(out, y), ref.mean(dim=1))
    dist = load("gaussian_nll").predictive(out)
    assert torch.allclose(dist.nll(y), -torch.distributions.Normal(mu, var.sqrt()).log_prob(y))
    assert torch.allclose(load("gaussian_nll")(out, y), ref.mean())
    assert torch.allclose(load("gaussian_nll", reduction="sum")(out, y), ref.mean(dim=1).sum())


def test_laplace_nll_is_laplace_log_prob():
    out, mu, raw, y = two_param(50, 2)
    ref = -torch.distributions.Laplace(mu, F.softplus(raw) + 1e-3).log_prob(y)
    assert torch.allclose(load("laplace_nll", reduction="none")(out, y), ref.mean(dim=1))
    assert torch.allclose(load("laplace_nll").predictive(out).nll(y), ref)


def test_beta_nll_weights_the_nll_by_the_stopped_variance():
    out, mu, raw, y = two_param(20, 2)
    nll = load("gaussian_nll", reduction="none")
    assert torch.equal(load("beta_nll", beta=0.0, reduction="none")(out, y), nll(out, y))
    var = F.softplus(raw) + 1e-6
    ref = (-torch.distributions.Normal(mu, var.sqrt()).log_prob(y) * var**0.5).mean(dim=1)
    assert torch.allclose(load("beta_nll", reduction="none")(out, y), ref)


def test_beta_nll_gradient_is_that_of_the_frozen_weight_nll_and_at_beta_1_the_mse_gradient():
    out, mu, raw, y = two_param(20, 2)
    n, t = y.shape
    for beta in (0.5, 1.0):
        x = out.clone().requires_grad_()
        load("beta_nll", beta=beta)(x, y).backward()
        m, r = mu.clone().requires_grad_(), raw.clone().requires_grad_()
        var = F.softplus(r) + 1e-6
        w = var.detach() ** beta  # a constant
        (w * -torch.distributions.Normal(m, var.sqrt()).log_prob(y)).mean().backward()
        assert torch.allclose(x.grad, torch.cat([m.grad, r.grad], dim=1))
    # beta = 1: the gradient to the mean is (mu - y) / (N T), that of the mean of ½(mu - y)²
    assert torch.allclose(x.grad[:, :t], (mu - y) / (n * t))
    m = mu.clone().requires_grad_()
    (0.5 * F.mse_loss(m, y)).backward()
    assert torch.allclose(x.grad[:, :t], m.grad)


def quad_crps(cdf, y: float) -> float:
    """∫ (F(x) - 1{x ≥ y})² dx, numerically."""
    below = integrate.quad(lambda x: cdf(x) ** 2, -np.inf, y, epsabs=1e-12, epsrel=1e-10)[0]
    above = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, np.inf, epsabs=1e-12, epsrel=1e-10)[0]
    return below + above


def test_closed_form_crps_matches_numerical_integration():
    out, mu, raw, y = two_param(6, 2, seed=3)
    gauss = load("crps_gaussian", reduction="none")
    g_dist, l_dist = gauss.predictive(out), load("laplace_nll").predictive(out)
    sigma, b = g_dist.std, l_dist.scale
    g_ref = torch.zeros_like(y)
    l_ref = torch.zeros_like(y)
    for i, j in np.ndindex(*y.shape):
        m, s, bb, yy = mu[i, j].item(), sigma[i, j].item(), b[i, j].item(), y[i, j].item()
        g_ref[i, j] = quad_crps(lambda x, m=m, s=s: stats.norm.cdf(x, m, s), yy)
        l_ref[i, j] = quad_crps(lambda x, m=m, b=bb: stats.laplace.cdf(x, m, b), yy)
    assert torch.allclose(g_dist.crps(y), g_ref, atol=1e-8, rtol=1e-7)
    assert torch.allclose(gauss(out, y), g_ref.mean(dim=1), atol=1e-8, rtol=1e-7)
    assert torch.allclose(l_dist.crps(y), l_ref, atol=1e-8, rtol=1e-7)


def test_pinball_matches_brute_force():
    levels = [0.1, 0.3, 0.5, 0.9]
    g = torch.Generator().manual_seed(1)
    out = torch.randn(7, 4 * 3, generator=g, dtype=f64)
    y = torch.randn(7, 3, generator=g, dtype=f64)
    o, yy = out.numpy(), y.numpy()
    grid = (np.arange(200) + 0.5) / 200  # CRPS: midpoint rule on the interpolated quantile function
    ref, crps = np.zeros(7), np.zeros(7)
    for i in range(7):
        for t in range(3):
            q, qs = o[i, t], []  # cumulative head, by hand
            for k, tau in enumerate(levels):
                if k:
                    q = q + math.log1p(math.exp(o[i, k * 3 + t]))
                qs.append(q)
                u = yy[i, t] - q
                ref[i] += max(tau * u, (tau - 1) * u) / (4 * 3)
            u = yy[i, t] - np.interp(grid, levels, qs)  # constant beyond the first and last levels
            crps[i] += 2 * np.maximum(grid * u, (grid - 1) * u).mean() / 3
    loss = load("pinball", quantiles=levels, reduction="none")
    assert np.allclose(loss(out, y).numpy(), ref)
    assert np.allclose(loss.predictive(out).crps(y).mean(dim=1).numpy(), crps)


def test_quantile_crps_approximates_the_gaussian_crps_on_a_dense_grid():
    levels = [(k + 0.5) / 200 for k in range(200)]
    mu, sigma = torch.tensor([[0.3]], dtype=f64), torch.tensor([[1.7]], dtype=f64)
    normal = torch.distributions.Normal(mu, sigma)
    q = normal.icdf(torch.tensor(levels, dtype=f64).reshape(1, -1, 1))
    y = torch.tensor([[1.1]], dtype=f64)
    exact = GaussianPredictive(mu, sigma**2).crps(y)
    assert torch.allclose(QuantilePredictive(levels, q).crps(y), exact, rtol=5e-3)


# --- gradients and extreme outputs ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gaussian_nll", "laplace_nll", "crps_gaussian", "pinball"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_float64(name, reduction):
    loss = load(name, reduction=reduction)
    g = torch.Generator().manual_seed(0)
    for t in (1, 3):
        z = (torch.randn(5, width(loss, t), generator=g, dtype=f64) * 2).requires_grad_()
        y = torch.randn(5, t, generator=g, dtype=f64) * 3
        assert torch.autograd.gradcheck(lambda z, y=y: loss(z, y), (z,))


def test_gradcheck_beta_nll():
    """β = 0 is an exact derivative; for β > 0 the stopped weight depends on the variance only, so the
    gradient to the mean is exact (the variance gradient is checked against the frozen weight above)."""
    out, _, raw, y = two_param(5, 3)
    z = out.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda z: load("beta_nll", beta=0.0)(z, y), (z,))
    m = out[:, :3].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda m: load("beta_nll")(torch.cat([m, raw], 1), y), (m,))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_loss_and_gradients_for_extreme_outputs(name, dtype):
    loss = load(name)
    g = torch.Generator().manual_seed(0)
    k = width(loss, 1)
    corners = torch.tensor([[a, b] for a in (-1e4, 0.0, 1e4) for b in (-1e4, -30.0, 0.0, 30.0, 1e4)])
    z = torch.cat([corners[:, :1].repeat(1, 3), corners[:, 1:].repeat(1, 3 * (k - 1))], dim=1)
    z = torch.cat([z, (torch.rand(40, 3 * k, generator=g) * 2 - 1) * 1e4])
    y = (torch.rand(len(z), 3, generator=g) * 2 - 1) * 1e4
    for target in (y, y.double(), torch.zeros_like(y)):
        x = z.to(dtype).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is torch.bfloat16):
            value = loss(x, target)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert torch.isfinite(x.grad).all()


# --- predictive distributions ---------------------------------------------------------------------------
def test_pinball_quantiles_never_cross():
    g = torch.Generator().manual_seed(0)
    loss = load("pinball")
    for scale in (1.0, 10.0, 1e4):
        out = torch.randn(500, width(loss, 2), generator=g) * scale
        q = loss.predictive(out).quantiles
        assert q.shape == (500, 9, 2) and (q.diff(dim=1) >= 0).all()
    assert (loss.predictive(torch.randn(500, 18, generator=g)).quantiles.diff(dim=1) > 0).all()


def normal_quantile_outputs(levels, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Raw pinball outputs whose cumulative head gives the N(mu, sigma) quantiles at ``levels``."""
    z = torch.tensor(stats.norm.ppf(levels), dtype=mu.dtype)
    q = mu.unsqueeze(1) + sigma.unsqueeze(1) * z.reshape(1, -1, 1)
    raw = torch.cat([q[:, :1], inv_softplus(q.diff(dim=1))], dim=1)
    return raw.flatten(1)


def test_intervals_cover_their_level_for_draws_from_the_prediction():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    mu = torch.randn(n, 1, generator=g) * 3
    scale = torch.rand(n, 1, generator=g) * 2 + 0.1
    outputs = torch.cat([mu, inv_softplus(scale)], dim=1)
    eps = torch.randn(n, 1, generator=g)
    u = torch.rand(n, 1, generator=g) - 0.5
    laplace_draw = mu - scale * u.sign() * torch.log1p(-2 * u.abs())
    cases = [
        (load("gaussian_nll", min_variance=1e-12), outputs, mu + scale.sqrt() * eps),
        (load("laplace_nll", min_scale=1e-12), outputs, laplace_draw),
        (load("pinball"), normal_quantile_outputs(DEFAULT_QUANTILES, mu, scale), mu + scale * eps),
    ]
    for loss, out, y in cases:
        with torch.no_grad():
            lo, hi = loss.predictive(out).interval(0.9)
        assert lo.shape == hi.shape == (n, 1) and not lo.requires_grad
        coverage = ((y >= lo) & (y <= hi)).float().mean().item()
        assert abs(coverage - 0.9) < 0.01, (type(loss).__name__, coverage)


def test_pinball_predictive_recovers_the_quantiles_it_was_given():
    mu, sigma = torch.tensor([[0.5, -2.0]]), torch.tensor([[1.0, 3.0]])
    dist = load("pinball").predictive(normal_quantile_outputs(DEFAULT_QUANTILES, mu, sigma))
    lo, hi = dist.interval(0.95)
    assert torch.allclose(lo, mu - 1.959964 * sigma, atol=1e-4) and torch.allclose(dist.point, mu, atol=1e-5)
    assert dist.interval(0.8) is not None and dist.interval(0.5) is not None
    assert dist.interval(0.7) is None and dist.nll(mu) is None


def test_pinball_median():
    q = torch.tensor([[1.0, 2.0, 4.0]]).reshape(1, 3, 1)
    assert QuantilePredictive([0.25, 0.5, 0.75], q).point.item() == 2.0
    assert QuantilePredictive([0.1, 0.4, 0.8], q).point.item() == pytest.approx(2.5)  # 2 + ¼·2
    assert QuantilePredictive([0.6, 0.7, 0.9], q).point.item() == 1.0
    assert QuantilePredictive([0.1, 0.2, 0.3], q).point.item() == 4.0
    assert QuantilePredictive([0.5], q[:, :1]).point.item() == 1.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("t", [1, 3])
def test_point_predictions_and_predictive_shapes(name, t):
    loss = load(name)
    out = torch.randn(8, width(loss, t), requires_grad=True)
    y = torch.randn(8, t)
    assert loss.point_predictions(out).shape == (8, t)
    with torch.no_grad():
        dist = loss.predictive(out)
        crps = dist.crps(y)
        nll = dist.nll(y)
        lo, hi = dist.interval(0.9)
    assert (
        crps.shape == (8, t) and (crps >= 0).all() and (lo <= dist.point).all() and (dist.point <= hi).all()
    )
    assert (nll is None) == (name == "pinball") and (nll is None or nll.shape == (8, t))
    assert not dist.point.requires_grad and dist.point.dtype == torch.float32
    assert loss(out, y).shape == () and load(name, reduction="none")(out, y).shape == (8,)
    if t == 1:  # [N] targets
        assert torch.equal(loss(out, y[:, 0]), loss(out, y))
    half = loss.predictive(out.detach().bfloat16())
    assert half.point.dtype == torch.float32


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="2 per target"):
        load("gaussian_nll")(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="do not match"):
        load("laplace_nll")(torch.randn(4, 4), torch.randn(4, 3))
    for name in ("gaussian_nll", "beta_nll", "crps_gaussian", "laplace_nll", "pinball"):
        loss = load(name)  # targets [T, N] instead of [N, T]: as many values, paired with other samples
        with pytest.raises(ValueError, match="do not match"):
            loss(torch.randn(2, 3 * loss.num_params), torch.randn(3, 2))


def test_interval_levels_are_checked():
    dist = LaplacePredictive(torch.zeros(2, 1), torch.ones(2, 1))
    lo, hi = dist.interval(0.5)
    assert torch.allclose(hi, torch.full_like(hi, math.log(2.0)))
    with pytest.raises(ConfigError, match="level"):
        dist.interval(1.0)


def test_classes_are_the_configs_targets():
    assert {type(load(n)) for n in NAMES} == {
        GaussianNLLLoss,
        BetaNLLLoss,
        LaplaceNLLLoss,
        GaussianCRPSLoss,
        PinballLoss,
    }
