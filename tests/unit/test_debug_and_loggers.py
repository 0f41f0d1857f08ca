"""The conveniences a Lightning-Hydra user reaches for: debug=, more callbacks, TensorBoard and MLflow."""

from __future__ import annotations

import pytest

from lossbench.errors import ConfigError
from lossbench.loggers import build_loggers


def test_a_missing_optional_logger_names_its_extra(make_cfg, monkeypatch):
    cfg = make_cfg("logger=tensorboard")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(
        ConfigError, match=r"logger=tensorboard needs the tensorboard package.*lossbench\[tensorboard\]"
    ):
        build_loggers(cfg.logger, config={})
