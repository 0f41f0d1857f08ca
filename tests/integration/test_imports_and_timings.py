"""What a run imports and the timings it records: structure only; timings are measured by make bench."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lossbench.perf import FILENAME as STEP_TIMES
from lossbench.run import run

TIMER = "+callbacks.step_timer._target_=lossbench.perf.StepTimer"


def _python(code: str, cwd: Path, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in env}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**base, **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_import_keeps_heavy_optional_modules_off_the_path(tmp_path: Path) -> None:
    """W&B loads only with a W&B logger, the report (plots) only for ``lossbench compare``. (torchvision
    and matplotlib are imported by torchmetrics itself, which Lightning imports: not ours to defer.)"""
    loaded = _python(
        "import sys, lossbench.run, os; "
        "print([m for m in ('wandb', 'lossbench.report', 'lossbench.report.plots') if m in sys.modules])",
        cwd=tmp_path,
    )
    assert loaded == "[]"


@pytest.mark.slow
def test_csv_only_run_never_imports_wandb(tmp_path: Path) -> None:
    code = (
        "import sys; "
        f"sys.argv = ['train.py', 'logger=csv', 'trainer.max_epochs=1', 'hydra.run.dir={tmp_path / 'run'}']; "
        "from lossbench.train import main; main(); print('wandb' in sys.modules)"
    )
    assert _python(code, cwd=tmp_path) == "False"
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_train_loss_every_epoch_step_times_and_phase_timings(make_cfg, tmp_path: Path) -> None:
    epochs = 3
    summary = run(
        make_cfg("logger=csv", f"trainer.max_epochs={epochs}", "trainer.log_every_n_steps=50", TIMER)
    )
    # one train/loss row per epoch, whatever log_every_n_steps is
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert all(float(r["train/loss"]) > 0 for r in rows)
    times = json.loads((tmp_path / STEP_TIMES).read_text())
    steps = summary["data_info"]["n_train"] // 64 + (summary["data_info"]["n_train"] % 64 > 0)
    assert [e["steps"] for e in times["epochs"]] == [steps] * epochs
    assert all(e["train_s"] > 0 for e in times["epochs"]) and times["fit_s"] > 0
    assert {"data", "model", "trainer", "fit", "test"} <= set(summary["timings"])
    assert json.loads((tmp_path / "metrics.json").read_text())["timings"] == summary["timings"]
