"""Every config group option composes; the CLI's --help, --cfg and errors are clean."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lossbench.config import group_options
from tests.conftest import run_cli

GROUPS = ("loss", "data", "model", "optim", "trainer", "logger", "callbacks", "debug")


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_has_options(group):
    assert group_options(group), f"conf/{group}/ has no options"


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
@pytest.mark.slow  # ~0.3 s per option; every loss option is also built by test_every_loss_option_instantiates
def test_every_group_option_composes(make_cfg, group, option):
    cfg = make_cfg(f"{group}={option}")
    assert HydraConfig.get().runtime.choices[group] == option
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


@pytest.mark.parametrize("option", group_options("loss"))
def test_every_loss_option_instantiates(make_cfg, option):
    loss = instantiate(make_cfg(f"loss={option}").loss)
    assert loss.reduction == "mean"


def test_required_options_exist():
    assert {"ce", "bce", "focal", "mse", "huber"} <= set(group_options("loss"))
    assert {"adam", "sgd"} <= set(group_options("optim"))
    assert {"cpu", "gpu", "ddp"} <= set(group_options("trainer"))
    assert {"wandb", "csv", "none", "default"} <= set(group_options("logger"))
    assert "digits" in group_options("data") and "mlp" in group_options("model")


@pytest.mark.slow
def test_help_lists_config_groups(tmp_path):
    out = run_cli("--help", cwd=tmp_path).stdout
    for group in GROUPS:
        assert f"{group}:" in out or f"{group}/" in out or group in out
    assert "focal" in out and "digits" in out


def test_cfg_job_prints_clean_tree(tmp_path):
    out = run_cli("--cfg", "job", "loss=huber", "loss.delta=0.5", cwd=tmp_path).stdout
    cfg = OmegaConf.create(out)
    assert "hydra" not in cfg
    assert cfg.loss._target_ == "lossbench.losses.regression.HuberLoss" and cfg.loss.delta == 0.5
    assert set(GROUPS) - {"debug"} <= set(cfg.keys())  # debug= presets set other keys, none of their own
    assert not (tmp_path / "outputs").exists(), "--cfg must not start a run"


def test_unknown_option_lists_valid_ones(tmp_path):
    proc = run_cli("loss=nope", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert "Could not find 'loss/nope'" in err
    for option in ("ce", "focal", "mse", "huber", "bce"):
        assert f"\t{option}\n" in err


@pytest.mark.parametrize("flag", ["--help", "--cfg=job", "--shell-completion"])
def test_the_command_line_answers_without_loading_torch(tmp_path, flag):
    """--help, --cfg job and shell completion parse the config only: torch and Lightning stay unloaded."""
    args = [flag, "query=loss="] if flag == "--shell-completion" else [flag]
    code = (
        f"import sys; sys.argv = ['train.py', *{args!r}]; from lossbench.train import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('loaded:', [m for m in ('torch', 'lightning') if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "loaded: []"


def test_every_target_names_its_defining_module():
    """``_target_: lossbench.losses.focal.FocalLoss``: one hop from a config file to the class."""
    import re

    from hydra.utils import get_object

    from lossbench.config import CONFIG_DIR

    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        for target in re.findall(r"_target_: (lossbench\.[\w.]+)", path.read_text()):
            module = target.rsplit(".", 1)[0]
            assert get_object(target).__module__ == module, f"{path.name}: {target} is defined elsewhere"


@pytest.mark.slow
def test_data_code_does_not_import_the_losses():
    """``Task`` lives in ``lossbench.task``: the data package stands on its own."""
    code = "import sys, lossbench.data; print([m for m in sys.modules if m.startswith('lossbench.losses')])"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
