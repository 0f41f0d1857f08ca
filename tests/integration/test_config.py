"""Every config group option composes; the CLI's --help, --cfg and errors are clean."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_cli

GROUPS = ("loss", "data", "model", "optim", "trainer", "logger", "callbacks", "debug")


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


@pytest.mark.slow
def test_data_code_does_not_import_the_losses():
    """``Task`` lives in ``lossbench.task``: the data package stands on its own."""
    code = "import sys, lossbench.data; print([m for m in sys.modules if m.startswith('lossbench.losses')])"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
