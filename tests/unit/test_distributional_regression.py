"""Distributional regression: the metrics of a predictive distribution, training runs that record them, and
the report's calibration plot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lossbench.config import losses_for_task
from lossbench.data.synthetic import SyntheticRegressionDataModule
from lossbench.losses.probabilistic import GaussianNLLLoss, PinballLoss
from lossbench.metrics import DistributionMetrics
from lossbench.record import RunRecord
from lossbench.report.collect import ReportRun
from lossbench.report.task_plots import calibration, coverage_curve
from lossbench.run import run
from lossbench.task import Task
from tests.distributional_runs import DISTRIBUTIONAL, FAST


def test_distribution_metrics_match_scipy_for_a_gaussian():
    g = torch.Generator().manual_seed(0)
    outputs = torch.randn(500, 2, generator=g)
    y = torch.randn(500, 1, generator=g) * 1.5
    loss = GaussianNLLLoss()
    metric = DistributionMetrics()
    metric.update(loss.predictive(outputs[:200]), y[:200])
    metric.update(loss.predictive(outputs[200:]), y[200:])
    values = {k: float(v) for k, v in metric.compute().items()}
    p = loss.predictive(outputs)
    mean, sd, yy = p.point.double().numpy(), None, y.double().numpy()
    lo, hi = p.interval(0.9)
    sd = ((hi - lo) / (2 * stats.norm.ppf(0.95))).double().numpy()
    assert values["nll"] == pytest.approx(-stats.norm.logpdf(yy, mean, sd).mean(), rel=1e-4)
    z = (yy - mean) / sd
    crps = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))
    assert values["crps"] == pytest.approx(crps.mean(), rel=1e-4)
    for level in (0.5, 0.8, 0.9, 0.95):
        half = stats.norm.ppf((1 + level) / 2) * sd
        inside = np.mean(np.abs(yy - mean) <= half)
        assert values[f"coverage_{round(level * 100)}"] == pytest.approx(inside, abs=1e-6)
    assert values["width_90"] == pytest.approx(float((hi - lo).mean()), rel=1e-5)


def test_quantile_losses_report_only_the_intervals_on_their_grid():
    loss = PinballLoss(quantiles=[0.05, 0.25, 0.5, 0.75, 0.95])
    metric = DistributionMetrics()
    metric.update(loss.predictive(torch.randn(40, 5)), torch.randn(40))
    expected = {"crps_grid", "coverage_50", "coverage_90", "width_90"}  # no nll
    assert set(metric.compute()) == expected, "coverage_error is over all four levels, or not logged"
    every_level = DistributionMetrics()  # the default grid has the four central intervals
    every_level.update(PinballLoss().predictive(torch.randn(40, 9)), torch.randn(40))
    assert "coverage_error" in every_level.compute()


def test_quantile_crps_scores_the_distribution_not_the_number_of_levels():
    """A midpoint rule on a grid's own levels scored the 0.05/0.5/0.95 quantiles of N(0, 1) 13% below
    the default nine levels' on samples of N(0, 1): the fewer levels, the better the score. One rule for
    every grid scores the distribution the levels describe (linear between them, constant beyond): the
    finer description of the true distribution scores better, and both lie near its closed form."""
    from lossbench.losses.probabilistic import DEFAULT_QUANTILES, GaussianPredictive, QuantilePredictive

    y = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = float(GaussianPredictive(torch.zeros_like(y), torch.ones_like(y)).crps(y).mean())

    def score(levels):
        q = torch.tensor([stats.norm.ppf(t) for t in levels], dtype=torch.float64).reshape(1, -1, 1)
        return float(QuantilePredictive(levels, q.expand(len(y), -1, 1)).crps(y).mean())

    fine, coarse = score(DEFAULT_QUANTILES), score([0.05, 0.5, 0.95])
    assert exact < fine < coarse < exact * 1.03
    assert fine == pytest.approx(exact, rel=2e-3)
    levels, y0 = [0.05, 0.5, 0.95], 0.3  # against a dense integral of the interpolated quantile function
    q = np.array([stats.norm.ppf(t) for t in levels])
    tau = np.linspace(0.0, 1.0, 400001)[1:-1]
    u = y0 - np.interp(tau, levels, q)
    integral = 2 * np.trapezoid(np.maximum(tau * u, (tau - 1) * u), tau)
    one = QuantilePredictive(levels, torch.tensor(q).reshape(1, -1, 1)).crps(torch.tensor([[y0]]))
    assert float(one) == pytest.approx(integral, rel=1e-4)


def test_the_distributional_losses_are_regression_losses():
    assert set(DISTRIBUTIONAL) <= set(losses_for_task(Task.REGRESSION))


def test_heteroscedastic_noise_grows_along_the_first_feature():
    common = {"target": "nonlinear", "n_samples": 4000, "n_features": 5}
    x, y = SyntheticRegressionDataModule(**common, noise=1.0, noise_growth=5.0).load_arrays()
    x0, clean = SyntheticRegressionDataModule(**common, noise=0.0).load_arrays()  # Friedman #1 itself
    assert np.array_equal(x, x0)
    residual = y - clean
    low, high = residual[x[:, 0] < np.quantile(x[:, 0], 0.1)], residual[x[:, 0] > np.quantile(x[:, 0], 0.9)]
    assert 1.0 < np.std(low) < 1.8 and 5.0 < np.std(high) < 6.5, (np.std(low), np.std(high))


def test_calibration_plot_draws_each_distributional_variant(tmp_path):
    def fake(variant: str, seed: int, metrics: dict) -> ReportRun:
        record = RunRecord("ok", loss=variant, seed=seed)
        return ReportRun(f"{variant}{seed}", record, metrics=metrics, group="g", variant=variant)

    curve = {"test/coverage_50": 0.45, "test/coverage_90": 0.86, "test/mae": 0.3}
    runs = [fake("gaussian_nll", s, curve) for s in range(2)] + [fake("mse", 0, {"test/mae": 0.3})]
    assert coverage_curve(curve) == [(0.5, 0.45), (0.9, 0.86)]
    png = calibration(runs, "g", tmp_path)
    assert png is not None and png.stat().st_size > 1000
    assert calibration([runs[-1]], "g", tmp_path) is None, "no coverage logged: no calibration plot"
    conformal = fake("mse", 1, {"test/mae": 0.3, "test/conformal_coverage_90": 0.91})
    assert coverage_curve(conformal.metrics, "test/conformal_coverage_") == [(0.9, 0.91)]
    assert calibration([conformal], "g", tmp_path) is not None, "a point loss's conformal coverage"


def test_quantile_crps_approximates_the_exact_crps_of_the_same_distribution():
    """The default grid's quantiles of N(0, 1): the midpoint-rule CRPS is within 5% of the closed form."""
    from lossbench.losses.probabilistic import DEFAULT_QUANTILES, GaussianPredictive, QuantilePredictive

    y = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    q = torch.tensor([stats.norm.ppf(t) for t in DEFAULT_QUANTILES], dtype=torch.float32)
    approx = QuantilePredictive(DEFAULT_QUANTILES, q.reshape(1, -1, 1).expand(len(y), -1, 1)).crps(y).mean()
    exact = GaussianPredictive(torch.zeros_like(y), torch.ones_like(y)).crps(y).mean()
    assert float(approx) == pytest.approx(float(exact), rel=0.05)


@pytest.mark.parametrize(
    ("loss", "metric", "match"),
    [
        (
            "pinball",
            "val/nll",
            r"not a logged validation metric: choose one of [^,]*(, val/(?!coverage_\d|width)\w+)*$",
        ),
        ("gaussian_nll", "val/coverage_90", "has no better direction .*val/coverage_error"),
    ],
)
def test_a_monitor_the_loss_cannot_rank_by_is_refused_before_training(make_cfg, loss, metric, match):
    from lossbench.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        run(make_cfg("data=diabetes", f"loss={loss}", f"monitor.metric={metric}", *FAST))
