"""Experiment presets compose; the embedded ones train; the CIFAR ones build on a tiny fake CIFAR dir."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from lossbench.config import CONFIG_DIR, group_options
from lossbench.data.stressors import long_tail_counts
from lossbench.errors import ConfigError
from lossbench.models import build_model
from tests.fake_vision import write_cifar

EMBEDDED = ("imbalanced_digits", "noisy_digits", "outlier_regression")
CIFAR = ("cifar10_lt", "calibration_cifar10")


def test_all_presets_exist():
    assert set(EMBEDDED + CIFAR) <= set(group_options("experiment"))


@pytest.mark.parametrize("name", group_options("experiment"))
def test_preset_composes_and_states_its_finding(make_cfg, name):
    cfg = make_cfg(f"experiment={name}")
    text = (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_") and "Probes:" in text
    assert f"experiment:{name}" in cfg.tags


def test_preset_values_override_defaults_and_cli_overrides_win(make_cfg):
    cfg = make_cfg("experiment=imbalanced_digits")
    assert cfg.data.imbalance_factor == 20 and cfg.monitor.metric == "val/bal_acc"
    assert make_cfg("experiment=imbalanced_digits", "data.imbalance_factor=3").data.imbalance_factor == 3
    lt = make_cfg("experiment=cifar10_lt")
    assert lt.model._target_.endswith("CifarResNet") and lt.trainer.max_epochs == 200
    assert lt.optim.optimizer.lr == 0.1 and lt.optim.optimizer.weight_decay == 2e-4
    assert lt.optim.scheduler.milestones == [160, 180] and lt.data.batch_size == 128


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_preset_builds_on_fake_cifar(make_cfg, tmp_path, name):
    write_cifar(tmp_path, "cifar10")  # 1,200 training images: 108 per class after the 10% val hold-out
    cfg = make_cfg(f"experiment={name}", f"paths.data_dir={tmp_path}", "data.verify_checksums=false")
    dm = instantiate(cfg.data)
    dm.setup()
    if name == "cifar10_lt":
        assert dm.class_counts.tolist() == long_tail_counts(108, 10, 100)
    model = build_model(cfg.model, input_shape=dm.input_shape, num_outputs=dm.num_classes)
    optimizer = instantiate(cfg.optim.optimizer)(model.parameters())
    instantiate(cfg.optim.scheduler)(optimizer)
    x, y = next(iter(dm.train_dataloader()))
    assert model(x[:4]).shape == (4, 10) and len(y) == 128


def test_cifar_lt_on_too_small_data_names_the_imbalance_limit(make_cfg, tmp_path):
    write_cifar(tmp_path, "cifar10", per_batch=40, n_test=20)  # 18 per class: imbalance 100 empties the tail
    cfg = make_cfg("experiment=cifar10_lt", f"paths.data_dir={tmp_path}", "data.verify_checksums=false")
    with pytest.raises(ConfigError, match="data.imbalance_factor=100 leaves class"):
        instantiate(cfg.data).setup()
