"""Real training runs on digits: every loss learns, runs are reproducible, outputs are where promised."""

from __future__ import annotations

import pytest

from lossbench.errors import ConfigError, LossTaskMismatchError
from lossbench.run import run


def test_data_split_depends_on_data_seed_only(make_cfg, tmp_path):
    from hydra.utils import instantiate

    def test_targets(*overrides):
        dm = instantiate(make_cfg(*overrides).data)
        dm.setup()
        return dm.splits["test"][1]

    assert test_targets("seed=0").equal(test_targets("seed=5"))
    assert not test_targets("data_seed=0").equal(test_targets("data_seed=1"))


def test_loss_task_mismatch_fails_before_training(make_cfg, tmp_path):
    with pytest.raises(LossTaskMismatchError) as info:
        run(make_cfg("loss=ce", "data=diabetes", "logger=none"))
    msg = str(info.value)
    assert "loss=ce" in msg and "data=diabetes" in msg and "regression" in msg
    assert "mse" in msg and "huber" in msg
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_monitor_metric_fails_before_training(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"monitor.metric=val/accuracy is not a logged.*val/acc, val/bal"):
        run(make_cfg("logger=none", "monitor.metric=val/accuracy", "monitor.mode=max"))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.optimizer.lr=-0.01", "optim.optimizer.lr=-0.01 is out of range"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is out of range"),
        ("seed=-1", "seed=-1 is out of range"),
    ],
)
def test_invalid_values_are_refused_before_training(make_cfg, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run(make_cfg("logger=none", override))
    assert not (tmp_path / "checkpoints").exists()
