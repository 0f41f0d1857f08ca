"""Temperature scaling and split-conformal intervals, fitted on validation outputs."""

from __future__ import annotations

import math

import pytest
import torch

from lossbench.calibration import (
    Recalibration,
    conformal_interval,
    conformal_quantile,
    conformity_scores,
    fit_temperature,
    tempered,
)
from lossbench.losses.cross_entropy import CrossEntropyLoss
from lossbench.losses.probabilistic import GaussianNLLLoss
from lossbench.losses.square import MSELoss


def test_the_fitted_temperature_undoes_an_overconfident_model():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 5, generator=gen) * 2.0
    labels = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)
    overconfident = torch.softmax(logits * 3.0, -1)  # the true probabilities at temperature 3
    assert fit_temperature(overconfident, labels) == pytest.approx(3.0, rel=0.05)
    kept = overconfident.min(-1).values > 1e-10  # a probability floored at 1e-12 has lost its logit
    assert kept.float().mean() > 0.9
    assert torch.allclose(tempered(overconfident[kept], 3.0), torch.softmax(logits[kept], -1), atol=1e-5)


def test_a_nearly_uniform_models_temperature_is_its_minimiser_not_the_search_edge():
    """Probabilities near 1/C carry their ranking in tiny differences: the best T is near 1e-3, which a
    search over [e^-4, e^4] ended at its edge (validation NLL 2.16 there against 1.42 at the minimum)."""
    from scipy.optimize import minimize_scalar

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 10, generator=gen)
    y = torch.randint(0, 10, (2000,), generator=gen)
    z[torch.arange(2000), y] += 1.5
    probs = torch.softmax(0.002 * z, -1)

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(probs.double().log() / math.exp(log_t), y))

    best = math.exp(minimize_scalar(nll, bounds=(-15, 15), method="bounded", options={"xatol": 1e-9}).x)
    assert best < math.exp(-4)
    assert fit_temperature(probs, y) == pytest.approx(best, rel=1e-3)


def test_the_conformal_quantile_is_the_finite_sample_rank():
    scores = torch.arange(1.0, 20.0).unsqueeze(-1)  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores).item() == 18.0
    assert math.isinf(conformal_quantile(torch.ones(5, 1)).item()), "n = 5 is too few for 90%"


def test_split_conformal_intervals_cover_90_percent_of_exchangeable_samples():
    gen = torch.Generator().manual_seed(1)
    covered = []
    for _ in range(200):
        y_cal, y_test = torch.randn(99, 1, generator=gen) * 2.0, torch.randn(200, 1, generator=gen) * 2.0
        q = conformal_quantile(conformity_scores(y_cal, torch.zeros_like(y_cal), None))
        lower, upper = conformal_interval(torch.zeros_like(y_test), None, q)
        covered.append(((y_test >= lower) & (y_test <= upper)).float().mean())
    assert 0.89 <= float(torch.stack(covered).mean()) <= 0.93  # exactly 0.9 in expectation for n = 99


def test_cqr_widens_a_too_narrow_interval():
    y = torch.randn(999, 1, generator=torch.Generator().manual_seed(2))
    narrow = (torch.full_like(y, -0.5), torch.full_like(y, 0.5))  # covers ~38% of N(0, 1)
    q = conformal_quantile(conformity_scores(y, torch.zeros_like(y), narrow))
    lower, upper = conformal_interval(torch.zeros_like(y), narrow, q)
    assert upper[0].item() == pytest.approx(1.645, abs=0.15)


def test_recalibration_of_a_classifier_logs_its_temperature_and_calibrated_scores():
    recal = Recalibration("classification", 3)
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(300, 3, generator=gen) * 4.0
    labels = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)
    fitted = recal.fit(CrossEntropyLoss(), logits, labels)
    assert fitted["temperature"] == pytest.approx(1.0, abs=0.2)  # labels drawn from softmax(logits)
    other = Recalibration("classification", 3)
    assert other.load(fitted) and other.fitted() == fitted
    other.update(CrossEntropyLoss(), logits, labels)
    assert set(other.compute()) == {"nll_ts", "ece_ts", "temperature"}


def test_a_validation_split_classified_without_a_mistake_keeps_temperature_one(caplog, monkeypatch):
    logits = torch.randn(300, 3, generator=torch.Generator().manual_seed(5)) * 4.0
    labels = logits.argmax(-1)  # the NLL falls towards T = 0: no temperature minimises it
    assert fit_temperature(torch.softmax(logits, -1), labels) is None
    labels[0] = (labels[0] + 1) % 3  # one mistake bounds it
    assert 0.02 < fit_temperature(torch.softmax(logits, -1), labels) < 1.0
    recal = Recalibration("classification", 3)
    monkeypatch.setattr("lossbench.calibration.SAID_SEPARATED", [])
    with caplog.at_level("DEBUG", logger="lossbench"):
        assert recal.fit(CrossEntropyLoss(), logits, logits.argmax(-1)) == {"temperature": 1.0}
        assert recal.fit(CrossEntropyLoss(), logits, logits.argmax(-1)) == {"temperature": 1.0}
    said = [r.levelname for r in caplog.records if "no finite temperature" in r.getMessage()]
    assert said == ["WARNING", "DEBUG"], "a warning once per process (tune and advise fit it per trial)"
    recal.update(CrossEntropyLoss(), logits, logits.argmax(-1))
    raw = -torch.log_softmax(logits.double(), -1).gather(-1, logits.argmax(-1, keepdim=True)).mean()
    assert recal.compute()["nll_ts"].item() == pytest.approx(raw.item(), rel=1e-5)


@pytest.mark.parametrize("loss", [MSELoss(), GaussianNLLLoss()])
def test_recalibration_of_a_regressor_gives_conformal_coverage_and_width(loss):
    gen = torch.Generator().manual_seed(4)
    outputs = torch.randn(500, loss.num_outputs("regression", None, 1), generator=gen)
    targets = loss.point_predictions(outputs) + torch.randn(500, 1, generator=gen)
    recal = Recalibration("regression", None)
    fitted = recal.fit(loss, outputs[:250], targets[:250])
    assert list(fitted) == ["quantile_0"]
    recal.update(loss, outputs[250:], targets[250:])
    scores = recal.compute()
    assert 0.8 <= scores["conformal_coverage_90"].item() <= 0.98 and scores["conformal_width_90"].item() > 0
    assert not Recalibration("multilabel", 3).applies


def test_ece_puts_a_confidence_of_one_in_the_last_of_its_15_bins():
    """torchmetrics bins by ``bucketize(conf, linspace(0, 1, 16), right=True) - 1``: a float32 softmax
    confidence of exactly 1.0 made a 16th bin, and one wrong such prediction moved the ECE by 1/N."""
    import numpy as np
    import torch

    from lossbench.metrics import ExpectedCalibrationError

    probs = torch.tensor([[1.0, 0.0, 0.0], [0.97, 0.02, 0.01], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    target = torch.tensor([1, 0, 1, 0])
    conf, right = probs.max(1).values.double().numpy(), (probs.argmax(1) == target).numpy()
    bins = np.minimum((conf * 15).astype(int), 14)  # 15 equal-width bins, the last one [14/15, 1]
    expected = sum(
        abs(right[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins)
    )
    ece = ExpectedCalibrationError(3)
    ece.update(probs, target)
    assert float(ece.compute()) == pytest.approx(expected, abs=1e-6)
