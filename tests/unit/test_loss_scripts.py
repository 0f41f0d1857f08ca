"""The loss scripts run on the real loss configs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lossbench.errors import ConfigError

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loss_curves_writes_a_png(tmp_path):
    curves = load("loss_curves")
    out = tmp_path / "sub" / "curves.png"
    assert curves.main(["loss=[ce,focal,sigmoid_focal,mse,l1,barron]", "focal.gamma=0.5", f"out={out}"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_loss_curves_rejects_unknown_losses():
    curves = load("loss_curves")
    with pytest.raises(ConfigError, match="nope"):
        curves.parse(["loss=[ce,nope]"])


def test_bench_losses_runs_small(capsys):
    bench = load("bench_losses")
    rows = bench.main(
        ["--n", "256", "--classes", "4", "--repeat", "1", "--loss", "focal", "l1", "--no-memory"]
    )
    names = {r["loss"] for r in rows}
    assert {"focal", "l1", "torch.cross_entropy", "torchvision.sigmoid_focal"} <= names
    focal = next(r for r in rows if r["loss"] == "focal")
    assert focal["ref"] == "torchvision.sigmoid_focal" and focal["x_ref"] > 0 and focal["saved"] <= 1.0
    assert "| focal |" in capsys.readouterr().out
