"""A packed sweep killed while it trains continues with ``resume=true``: every replica from its own
``last.ckpt``, to the records, curves and predictions of a sweep that was never stopped; a finished
sweep continued again keeps every record as it is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import preloaded
from tests.conftest import ROOT, read_metrics, run_cli

pytestmark = pytest.mark.slow

SWEEP = (
    "-m",
    "hydra/launcher=packed",
    "loss=ce",
    "seed=0,1",  # replicas of other seeds: each must continue from its own weights and generators
    "optim.optimizer.lr=0.001,0.002",  # replicas with their own optimizers (ReplicaOptimizers)
    "model.hidden_dims=[64]",
    "trainer.max_epochs=8",
    "logger=csv",
    "callbacks.rich_progress_bar=null",
)
JOBS = range(4)


def kill_after_first_epoch(sweep_dir: Path, cwd: Path) -> int:
    """Start the sweep, SIGKILL it once every job has a ``last.ckpt``; the epoch job 0's holds (the
    replicas' checkpoints may be of two epochs: those form two groups when the sweep continues)."""
    proc = preloaded.popen(
        [sys.executable, str(ROOT / "train.py"), *SWEEP, f"hydra.sweep.dir={sweep_dir}"],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lasts = [sweep_dir / str(job) / "checkpoints" / "last.ckpt" for job in JOBS]
    deadline = time.monotonic() + 300
    while not all(p.is_file() for p in lasts) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return int(torch.load(lasts[0], map_location="cpu", weights_only=True)["epoch"])


def test_a_killed_packed_sweep_continues_each_replica_from_its_last_checkpoint(tmp_path):
    run_cli(*SWEEP, "hydra.sweep.dir=whole", cwd=tmp_path)
    epoch = kill_after_first_epoch(tmp_path / "cut", tmp_path)
    assert epoch < 7 and not (tmp_path / "cut" / "0" / "metrics.json").exists()  # killed mid-training

    proc = run_cli(*SWEEP, "resume=true", "hydra.sweep.dir=cut", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    # each replica from its own checkpoint
    assert output.count("continues from epoch") == len(JOBS), output[-3000:]
    for job in JOBS:
        whole, cut = tmp_path / "whole" / str(job), tmp_path / "cut" / str(job)
        mine, theirs = read_metrics(cut), read_metrics(whole)
        assert mine["status"] == theirs["status"] == "ok" and mine["epochs"] == 8
        assert (mine["val"], mine["test"]) == (theirs["val"], theirs["test"]), job  # exactly
        assert (
            Path(mine["monitor"]["best_checkpoint"]).name == Path(theirs["monitor"]["best_checkpoint"]).name
        )
        assert (cut / "csv" / "metrics.csv").read_text() == (whole / "csv" / "metrics.csv").read_text()
        with np.load(cut / "predictions.npz") as a, np.load(whole / "predictions.npz") as b:
            assert all(np.array_equal(a[name], b[name]) for name in b.files)

    # continued once more, the finished sweep trains nothing and rewrites no record
    before = {job: (tmp_path / "cut" / str(job) / "metrics.json").read_bytes() for job in JOBS}
    proc = run_cli(*SWEEP, "resume=true", "hydra.sweep.dir=cut", cwd=tmp_path)
    assert "train packed" not in proc.stdout + proc.stderr
    assert (proc.stdout + proc.stderr).count("had finished") == len(JOBS)
    for job in JOBS:
        assert (tmp_path / "cut" / str(job) / "metrics.json").read_bytes() == before[job]
