"""Distributional regression runs: the regression losses that predict a distribution or its quantiles
(``DISTRIBUTIONAL``) and the overrides that keep a run quiet (``FAST``: no logger, callbacks, progress bar
or sanity check)."""

from __future__ import annotations

FAST = (
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
)
DISTRIBUTIONAL = ("gaussian_nll", "beta_nll", "laplace_nll", "crps_gaussian", "pinball")
