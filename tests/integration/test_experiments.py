"""Experiment presets compose; the embedded ones train; the CIFAR ones build on a tiny fake CIFAR dir."""

from __future__ import annotations

import pytest

from lossbench.run import run

EMBEDDED = ("imbalanced_digits", "noisy_digits", "outlier_regression")


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_preset_trains_one_epoch(make_cfg, name):
    summary = run(make_cfg(f"experiment={name}", "trainer.max_epochs=1", "logger=none", "callbacks=none"))
    assert summary["epochs"] == 1 and summary["test"]
