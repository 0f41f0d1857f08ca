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


def test_trainer_enable_progress_bar_false_trains_without_a_bar(make_cfg):
    """The configured bar is left out (Lightning refuses a bar callback with the option off); without the
    configured bar Lightning adds its own, as it documents."""
    from lossbench.build import build_trainer

    def trainer(*overrides: str):
        cfg = make_cfg("logger=none", "monitor.metric=val/acc", "monitor.mode=max", *overrides)
        return build_trainer(cfg, {}, [], None)

    assert trainer("trainer.enable_progress_bar=false").progress_bar_callback is None
    lightnings = trainer("callbacks.rich_progress_bar=null")
    assert type(lightnings.progress_bar_callback).__module__.startswith("lightning.pytorch.callbacks")
    ours = trainer()
    assert type(ours.progress_bar_callback).__name__ == "SparseRichProgressBar"
