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
    listed = out.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    for group in GROUPS:
        assert f"\n{group}: " in listed, f"{group} is not listed among the config groups"
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


@pytest.mark.parametrize("case", ["bad_hyper_parameter", "table_without_its_target"])
def test_a_bad_override_or_table_fails_in_one_line_before_torch_loads_and_leaves_no_run_dir(tmp_path, case):
    (tmp_path / "t.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    args = {
        "bad_hyper_parameter": ["loss=focal", "loss.gamma=abc"],
        "table_without_its_target": ["data=table", f"data.path={tmp_path / 't.csv'}", "data.target=y"],
    }[case]
    code = (
        f"import sys; sys.argv = ['train.py', *{args!r}]; from lossbench.train import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    print('exit:', exit.code)\n"
        "print('loaded:', [m for m in ('torch', 'lightning') if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    out = proc.stdout.strip().splitlines()
    assert out[-2:] == ["exit: 2", "loaded: []"], proc.stdout + proc.stderr
    errors = [line for line in out if "ERROR" in line]
    assert len(errors) == 1 and ("loss.gamma='abc'" in errors[0] or "column 'y'" in errors[0])
    assert not list((tmp_path / "outputs").glob("*/*/*")), "no run dir is left"
