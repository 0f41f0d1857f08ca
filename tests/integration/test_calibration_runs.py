"""Calibration on real runs: raw and conformal 90% intervals on diabetes, temperature scaling on digits."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.run import run


@pytest.mark.slow
def test_conformal_intervals_cover_90_percent_on_diabetes(make_cfg, tmp_path):
    # 20 epochs: every run's best epoch comes earlier (the same metrics as with 40)
    common = ("data=diabetes", "trainer.max_epochs=20", "logger=none", "callbacks.rich_progress_bar=null")
    coverage: dict[str, list[float]] = {"mse": [], "gaussian_nll": []}
    raw = []
    for loss in coverage:
        for seed in range(5):
            out = run(
                make_cfg(*common, f"loss={loss}", f"seed={seed}", output_dir=tmp_path / f"{loss}{seed}")
            )
            coverage[loss].append(out["test"]["test/conformal_coverage_90"])
            if loss == "gaussian_nll":
                assert out["monitor"]["metric"] == "val/nll", "a distributional loss picks on a proper score"
                raw.append(out["test"]["test/coverage_90"])
    for loss, values in coverage.items():
        assert 0.86 <= np.mean(values) <= 0.94, (loss, values)
    assert 0.75 <= np.mean(raw[:3]) <= 0.98, raw


@pytest.mark.slow
def test_temperature_scaling_is_reported_beside_the_raw_calibration(make_cfg, tmp_path):
    out = run(make_cfg("trainer.max_epochs=5", "logger=none", output_dir=tmp_path))
    test = out["test"]
    assert {"test/nll", "test/ece", "test/nll_ts", "test/ece_ts", "test/temperature"} <= set(test)
    assert test["test/temperature"] > 0
    assert test["test/nll_ts"] <= test["test/nll"] * 1.05, "a temperature fitted on val rarely hurts test NLL"
