"""Tabular and synthetic data modules, both loader paths, label checks, training on stressed data."""

from __future__ import annotations

import pytest

from lossbench.run import run


@pytest.mark.slow
def test_training_on_stressed_data_with_the_torch_loader(make_cfg, tmp_path):
    """digits-LT + noise trains, class counts reach the metrics file, and both loaders agree."""
    common = (
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=2",
        "data.imbalance_factor=5",
        "data.label_noise=0.1",
    )
    a = run(make_cfg(*common, output_dir=tmp_path / "a"))
    b = run(make_cfg(*common, "data.loader=torch", output_dir=tmp_path / "b"))
    assert a["test"] == b["test"]
    counts = a["data_info"]["class_counts"]
    assert sum(counts) == a["data_info"]["n_train"] and a["data_info"]["imbalance_factor"] == 5
