"""Bad input gets a one-line error that names the problem and the fix."""

from __future__ import annotations

import pytest
import torch

from tests.bad_overrides import INVALID, WRONG_TYPES
from tests.conftest import run_cli


def _fails_with(tmp_path, *args: str) -> str:
    proc = run_cli(*args, "logger=none", cwd=tmp_path, check=False)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 2, f"{args} should exit 2, exited {proc.returncode}: {out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    return out


ADDED_KEY = ("+max_epoch=3", "+max_epoch=3: max_epoch is not a config key, and nothing would read it")


@pytest.mark.parametrize(("override", "expected"), [WRONG_TYPES[2], INVALID[0], ADDED_KEY])
@pytest.mark.slow
def test_bad_values_are_one_line_on_the_cli(tmp_path, override, expected):
    """On the command line the same errors are one ``ConfigError`` line, exit status 2, no traceback."""
    out = _fails_with(tmp_path, *override.split())
    assert expected in out
    assert len([ln for ln in out.splitlines() if "ConfigError" in ln]) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.slow
def test_gpu_trainer_without_a_gpu(tmp_path):
    out = _fails_with(tmp_path, "trainer=gpu")
    assert "needs a CUDA GPU" in out and "trainer=cpu" in out


def test_monitor_mode_follows_the_metric(make_cfg):
    from lossbench.run import run

    summary = run(make_cfg("monitor.metric=val/nll", "logger=none", "trainer.max_epochs=1"))
    assert summary["monitor"]["mode"] == "min"
