"""Distributional regression: the metrics of a predictive distribution, training runs that record them, and
the report's calibration plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossbench.run import run
from tests.distributional_runs import DISTRIBUTIONAL, FAST


@pytest.mark.parametrize("loss", DISTRIBUTIONAL)
@pytest.mark.slow
def test_distributional_losses_train_on_diabetes_and_record_their_scores(make_cfg, tmp_path, loss):
    lr = ("optim.optimizer.lr=0.01", "trainer.max_epochs=10")
    test = run(make_cfg("data=diabetes", f"loss={loss}", *lr, *FAST))["test"]
    assert test["test/r2"] >= 0.2, test
    assert {
        "test/crps_grid" if loss == "pinball" else "test/crps",
        "test/coverage_90",
        "test/width_90",
    } <= set(test)
    assert ("test/nll" in test) == (loss != "pinball")
    assert 0.6 <= test["test/coverage_90"] <= 1.0, test


def test_gaussian_nll_run_writes_nll_and_coverage_to_metrics_json(make_cfg, tmp_path):
    run(make_cfg("data=diabetes", "loss=gaussian_nll", "trainer.max_epochs=3", "logger=csv"))
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert {"test/nll", "test/coverage_90", "test/crps", "test/mae", "test/rmse", "test/r2"} <= set(
        record["test"]
    )
    with np.load(tmp_path / "predictions.npz") as p:
        assert p["outputs"].shape[1] == 2 and p["point"].shape == p["targets"].shape
        inside = (p["lower_90"] <= p["targets"]) & (p["targets"] <= p["upper_90"])
        assert (p["lower_90"] < p["point"]).all() and (p["point"] < p["upper_90"]).all()
        assert inside.mean() == pytest.approx(record["test"]["test/coverage_90"], abs=1e-6)


@pytest.mark.slow
def test_heteroscedastic_preset_gaussian_nll_matches_mse_on_mae_with_calibrated_intervals(make_cfg, tmp_path):
    """On the preset, a mean + variance head loses nothing on the mean, and its 90% intervals cover."""
    test = {}
    for loss in ("mse", "gaussian_nll", "beta_nll"):
        cfg = make_cfg(
            "experiment=heteroscedastic_regression",
            f"loss={loss}",
            "trainer.max_epochs=20",
            "logger=none",
            output_dir=tmp_path / loss,
        )
        test[loss] = run(cfg)["test"]
    for loss in ("gaussian_nll", "beta_nll"):
        assert test[loss]["test/mae"] <= 1.05 * test["mse"]["test/mae"], test
        assert 0.8 <= test[loss]["test/coverage_90"] <= 0.97, test[loss]
        assert test[loss]["test/coverage_error"] < 0.08, test[loss]
