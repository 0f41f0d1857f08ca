"""Faults a run survives: SIGTERM, Ctrl-C, Slurm requeue, a killed sweep, a full disk, runs at once."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from tests import preloaded
from tests.conftest import ROOT, read_metrics, run_cli, start_command

LONG = ("trainer.max_epochs=30", "optim=sgd", "model.dropout=0.3")  # its best epoch passes early


def _start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> preloaded.Process:
    """``python train.py ARGS`` started as a user would (:func:`tests.conftest.start_command`); it reacts to
    Ctrl-C as a user's run does: pytest leaves SIGINT to Python, so the child's raises."""
    return start_command([sys.executable, str(ROOT / "train.py"), *args], cwd, env)


def _wait_for(proc: preloaded.Process, ready, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _epoch(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def _csv_epochs(run_dir: Path, metric: str) -> list[int]:
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return [int(float(r["epoch"])) for r in csv.DictReader(f) if r.get(metric)]


def _past_best(run_dir: Path) -> bool:
    """last.ckpt holds an epoch after the best one (the best checkpoint is then no longer the latest)."""
    last = run_dir / "checkpoints" / "last.ckpt"
    best = list((run_dir / "checkpoints").glob("best_epoch_*.ckpt"))
    if not last.is_file() or len(best) != 1:
        return False
    return _epoch(last) > int(best[0].stem.rsplit("_", 1)[1]) + 1


# --- SIGTERM, Ctrl-C and Slurm's requeue, end to end -------------------------------------------------
@pytest.mark.slow
def test_sigterm_after_the_best_epoch_keeps_last_epoch_and_resume_matches(tmp_path):
    # the reference run also shows that a run never waits on stdin: W&B with a key and an unreachable
    # server (no stdin, as in CI) goes offline instead of asking
    unreachable = {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    run_cli(*LONG, "hydra.run.dir=full", cwd=tmp_path, env=unreachable)
    assert list((tmp_path / "full" / "wandb").glob("offline-run-*"))
    reference = read_metrics(tmp_path / "full")

    proc = _start(*LONG, "hydra.run.dir=killed", cwd=tmp_path)
    run_dir = tmp_path / "killed"
    _wait_for(proc, lambda: _past_best(run_dir), "its best epoch had passed")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:]
    last = _epoch(run_dir / "checkpoints" / "last.ckpt")
    assert f"holds epoch {last}, the last one finished" in out and "resume=true" in out
    assert read_metrics(run_dir)["status"] == "interrupted"
    assert _csv_epochs(run_dir, "val/acc")[-1] in (last, last + 1)  # at most the epoch being validated
    wandb_id = (run_dir / "wandb_run_id").read_text()

    run_cli(*LONG, "hydra.run.dir=killed", "resume=true", cwd=tmp_path)
    resumed = read_metrics(run_dir)
    assert resumed["test"] == reference["test"] and resumed["monitor"]["best"] == reference["monitor"]["best"]
    for metric in ("val/acc", "train/loss"):
        assert _csv_epochs(run_dir, metric) == list(range(30)), f"every epoch's {metric} once"
    # offline, W&B cannot continue the run: its continued part is a new W&B run (online the id is kept)
    continued = (run_dir / "wandb_run_id").read_text().strip()
    offline = {p.name.rsplit("-", 1)[1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert continued != wandb_id.strip() and offline == {wandb_id.strip(), continued}


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_run_continues(tmp_path):
    args = ("trainer.max_epochs=25", "logger=csv", "hydra.run.dir=run")  # long enough to be mid-fit
    proc = _start(*args, cwd=tmp_path)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    _wait_for(proc, lambda: last.is_file() and _epoch(last) >= 2, "its third epoch")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:]
    assert "stopped by SIGINT" in out and "Traceback" not in out
    run_cli(*args, "resume=true", cwd=tmp_path)
    assert read_metrics(tmp_path / "run")["epochs"] == 25
    assert _csv_epochs(tmp_path / "run", "val/acc") == list(range(25))


@pytest.mark.slow
def test_slurm_requeue_signal_requeues_and_the_requeued_job_continues(tmp_path):
    """Lightning's SLURMEnvironment(auto_requeue=True) on SIGUSR1, then SIGTERM; the job restarts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/sh\necho "$@" >> "$SCONTROL_LOG"\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SCONTROL_LOG": str(tmp_path / "scontrol.log"),
        **dict(SLURM_JOB_ID="4242", SLURM_NTASKS="1", SLURM_JOB_NAME="train", SLURM_NODEID="0"),
        **dict(SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODELIST="localhost"),
    }
    args = ("trainer.max_epochs=20", "logger=csv")
    proc = _start(*args, cwd=tmp_path, env=slurm)
    _wait_for(
        proc, lambda: list(tmp_path.glob("outputs/train/*/*/checkpoints/last.ckpt")), "its first checkpoint"
    )
    proc.send_signal(signal.SIGUSR1)
    _wait_for(proc, (tmp_path / "scontrol.log").is_file, "scontrol requeue")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]

    run_cli(*args, cwd=tmp_path, env={**slurm, "SLURM_RESTART_COUNT": "1"})  # what Slurm starts again
    (run_dir,) = [p.parent for p in tmp_path.glob("outputs/train/*/*/metrics.json")]
    assert "resuming from" in (run_dir / "train.log").read_text()
    assert _csv_epochs(run_dir, "val/acc") == list(range(20)), "continued, not started again"


# --- a sweep stopped and continued ------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_stops_a_sweep_with_its_table_and_the_sweep_resumes(tmp_path):
    sweep = ("-m", "loss=ce,focal,mse", "logger=csv", "trainer.max_epochs=12", "hydra.sweep.dir=sw")
    proc = _start(*sweep, cwd=tmp_path)
    last = tmp_path / "sw" / "1" / "checkpoints" / "last.ckpt"
    _wait_for(proc, last.is_file, "job 1's first checkpoint")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:]
    assert "1 ok, 0 failed, 1 interrupted" in out and "later jobs did not start" in out
    assert "resume=true hydra.sweep.dir=sw" in out
    assert json.loads((tmp_path / "sw" / "1" / "metrics.json").read_text())["status"] == "interrupted"
    finished = (tmp_path / "sw" / "0" / "metrics.json").read_bytes()

    resumed = run_cli(*sweep, "resume=true", cwd=tmp_path)
    assert "3 jobs, 3 ok" in resumed.stdout + resumed.stderr
    assert (tmp_path / "sw" / "0" / "metrics.json").read_bytes() == finished, "a finished job is kept"
    assert "resuming from" in (tmp_path / "sw" / "1" / "train.log").read_text()
    assert _csv_epochs(tmp_path / "sw" / "1", "val/acc") == list(range(12)), "continued, every epoch once"
    assert read_metrics(tmp_path / "sw" / "2")["status"] == "ok"


@pytest.mark.slow
def test_three_runs_started_in_the_same_second_finish_in_three_dirs(tmp_path):
    same_stamp = "hydra.run.dir=${lossbench_run_dir:outputs,same}"
    procs = [_start(same_stamp, "logger=csv", "trainer.max_epochs=1", cwd=tmp_path) for _ in range(3)]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:]
    dirs = sorted(p.parent.name for p in (tmp_path / "outputs").glob("*/metrics.json"))
    assert dirs == ["same", "same_1", "same_2"]  # the third takes _2 once _1 is taken


@pytest.mark.slow
def test_a_failing_run_deletes_nothing_in_its_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "csv").mkdir(parents=True)
    (run_dir / "csv" / "metrics.csv").write_text("epoch,step,val/acc\n0,10,0.5\n")
    (run_dir / "notes.txt").write_text("keep me")
    proc = run_cli("loss=ce", "data=diabetes", "hydra.run.dir=run", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert (run_dir / "notes.txt").read_text() == "keep me"
    assert (run_dir / "csv" / "metrics.csv").read_text() == "epoch,step,val/acc\n0,10,0.5\n"
