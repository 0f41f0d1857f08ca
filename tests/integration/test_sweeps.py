"""Sweeps: failed jobs recorded, end-of-sweep table, presets (sweep, Slurm), DDP guard, W&B."""

from __future__ import annotations

import json
import signal
import sys
import time

import pytest

from lossbench.run_dir import RunDir
from lossbench.sweep_jobs import planned_jobs
from tests import preloaded
from tests.conftest import ROOT, read_metrics, run_cli, start_command

FAST = ("trainer.max_epochs=1", "callbacks.rich_progress_bar=null")


@pytest.mark.slow
def test_failing_job_is_recorded_and_the_sweep_finishes(tmp_path):
    """gamma=-1 is invalid: that job is recorded as failed, the other trains; table printed; exit status 1."""
    proc = run_cli(
        "-m", "loss=focal", "loss.gamma=-1,2", *FAST, "hydra.sweep.dir=sweep", cwd=tmp_path, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    failed, ok = read_metrics(tmp_path / "sweep" / "0"), read_metrics(tmp_path / "sweep" / "1")
    assert failed["status"] == "failed" and failed["error"]["type"] == "ConfigError"
    assert "gamma" in failed["error"]["message"] and "loss.gamma=-1" in failed["overrides"]
    assert failed["config"]["loss"]["gamma"] == -1
    assert ok["status"] == "ok" and ok["test"]["test/acc"] > 0.5
    assert "2 jobs, 1 ok, 1 failed" in out and "ConfigError: loss.gamma=-1" in out
    summary = json.loads((tmp_path / "sweep" / "sweep_summary.json").read_text())
    assert [r["status"] for r in summary] == ["failed", "ok"]
    # W&B conventions: every job of the sweep shares one group (the sweep's), job_type = the loss and its
    # loss.* overrides (the variant compare names)
    wandb_cfg = ok["config"]["logger"]["wandb"]
    assert wandb_cfg["group"] == "train_sweep" and wandb_cfg["job_type"] == "focal loss.gamma=2"
    assert wandb_cfg["name"] == "focal loss.gamma=2 seed=0"
    assert failed["config"]["logger"]["wandb"]["group"] == "train_sweep"
    assert len(list((tmp_path / "sweep" / "1" / "wandb").glob("offline-run-*"))) == 1


SELF_STOP = '''
import os, signal
from lightning.pytorch.callbacks import Callback

class StopAfterFirstEpoch(Callback):
    """SIGTERM to this process alone after epoch 0, as Slurm stops a job at its time limit."""
    def __init__(self, loss):
        self.loss = loss
    def on_train_epoch_end(self, trainer, pl_module):
        if self.loss == "mse" and trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGTERM)
'''


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    """The Slurm preset's plugin, run locally: two jobs in their own processes, then the table. A job
    stopped alone (SIGTERM to its process, as at a Slurm time limit) ends as a job: the sweep's table lists
    it interrupted with the command that continues it, which finishes it from its last checkpoint."""
    (tmp_path / "self_stop.py").write_text(SELF_STOP)
    args = ("-m", "hydra/launcher=submitit_local", "loss=ce,mse", "trainer.max_epochs=2", *FAST[1:])
    stop = "+callbacks.stop._target_=self_stop.StopAfterFirstEpoch", "+callbacks.stop.loss=${loss_name}"
    env = {"PYTHONPATH": str(tmp_path)}
    proc = run_cli(*args, *stop, "logger=csv", "hydra.sweep.dir=sl", cwd=tmp_path, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "UncompletedJobError" not in out, out[-3000:]
    assert "2 jobs, 1 ok, 0 failed, 1 interrupted" in proc.stdout
    assert [read_metrics(tmp_path / "sl" / str(i))["status"] for i in range(2)] == ["ok", "interrupted"]
    again = out.split("the interrupted jobs continue with: ", 1)[1].split("\n", 1)[0]
    assert "resume=true" in again and "hydra.sweep.dir=sl" in again
    assert list((tmp_path / "sl" / ".submitit").iterdir())
    proc = run_cli(*args, *stop, "logger=csv", "hydra.sweep.dir=sl", "resume=true", cwd=tmp_path, env=env)
    assert "2 jobs, 2 ok, 0 failed" in proc.stdout
    continued = read_metrics(tmp_path / "sl" / "1")
    assert continued["loss"] == "mse" and continued["epochs"] == 2


@pytest.mark.slow
def test_ddp_in_multirun_fails_fast(tmp_path):
    """Subprocess DDP would re-run the whole sweep in each child: refused before any job, naming ddp_spawn."""
    proc = run_cli(
        "-m",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "++trainer.strategy=ddp",
        "loss=ce,mse",
        "hydra.sweep.dir=dd",
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "trainer.strategy=ddp_spawn" in proc.stderr + proc.stdout
    assert not (tmp_path / "dd" / "0").exists()


@pytest.mark.slow
def test_parallel_launcher_gives_the_sequential_metrics(tmp_path):
    """hydra/launcher=parallel (joblib, 2 jobs at once, one CPU thread each) vs one job after another; then
    ``python scripts/compare.py <the sequential sweep>`` as a user would."""
    common = ("-m", "loss=ce,focal", "seed=0,1", "trainer.max_epochs=1", "logger=csv")
    run_cli(*common, "hydra.sweep.dir=seq", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    proc = run_cli(*common, "hydra/launcher=parallel", "hydra.sweep.dir=par", cwd=tmp_path)
    assert "4 jobs, 4 ok" in proc.stdout + proc.stderr
    for job in range(4):
        seq, par = read_metrics(tmp_path / "seq" / str(job)), read_metrics(tmp_path / "par" / str(job))
        assert par["test"] == seq["test"] and (par["loss"], par["seed"]) == (seq["loss"], seq["seed"])
    assert json.loads((tmp_path / "par" / "sweep_summary.json").read_text())[3]["status"] == "ok"
    planned = planned_jobs(tmp_path / "seq")  # Hydra's own jobs, as the enumeration names them
    assert planned == [RunDir(tmp_path / "seq" / str(job)).overrides() for job in range(4)]

    compare = [sys.executable, str(ROOT / "scripts" / "compare.py"), "seq"]
    proc = preloaded.run(compare, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = tmp_path / "seq" / "report"
    md = (report / "report.md").read_text()
    assert "## digits (baseline: ce)" in md
    assert "| focal | test/acc" in md or "| **focal** | test/acc" in md
    assert (report / "reliability_digits.png").is_file() and (report / "curves_digits.png").is_file()


@pytest.mark.slow
def test_a_parallel_sweep_stopped_by_sigterm_stops_its_workers_and_continues(tmp_path):
    """SIGTERM to a sweep whose jobs run in joblib's workers: the jobs training stop as runs stop (each
    ``interrupted``, its last checkpoint kept), the later jobs do not start, the sweep's process prints the
    table and the command that continues it, and nothing trains after it ended."""
    sweep = ("-m", "hydra/launcher=parallel", "loss=ce,focal", "seed=0,1", "logger=csv")
    sweep += ("trainer.max_epochs=8", "callbacks.rich_progress_bar=null")
    sweep += ("trainer.enable_progress_bar=false", "hydra.sweep.dir=sw")
    proc = start_command([sys.executable, str(ROOT / "train.py"), *sweep], tmp_path)
    sw, deadline = tmp_path / "sw", time.monotonic() + 180
    while not list(sw.glob("*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before a checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-3000:]
    assert "stopped by SIGTERM" in out and "resume=true hydra.sweep.dir=sw" in out and "┃ job" in out
    statuses = {j.name: read_metrics(j)["status"] for j in sw.glob("[0-9]") if (j / "metrics.json").exists()}
    assert statuses and set(statuses.values()) == {"interrupted"}, statuses  # none finished meanwhile
    files = {p: p.stat().st_mtime_ns for p in sw.rglob("*") if p.is_file()}
    time.sleep(3)
    assert {p: p.stat().st_mtime_ns for p in sw.rglob("*") if p.is_file()} == files, "a worker trains on"

    proc = run_cli(*sweep, "resume=true", cwd=tmp_path)
    assert "4 jobs, 4 ok" in proc.stdout + proc.stderr and not (sw / ".stopping").exists()


@pytest.mark.slow
def test_a_four_job_sweep_prints_a_line_or_so_per_step_not_pages(tmp_path):
    """W&B quiet, Lightning's start-up lines only in each job's log file, no test table per job; each job
    logs its own W&B run (offline)."""
    sweep = ("-m", "loss=ce,focal,mse,huber", "trainer.max_epochs=2", "hydra.sweep.dir=sw")
    proc = run_cli(*sweep, cwd=tmp_path)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) <= 60, "\n".join(lines)
    text = "\n".join(lines)
    assert "Tip:" not in text and "GPU available" not in text and "Test metric" not in text
    assert "4 jobs, 4 ok" in text and text.count(" of 4 (loss=") == 4, "one line per job: #n of 4"
    assert "GPU available" in (tmp_path / "sw" / "0" / "train.log").read_text(), "kept in the job's log"
    assert "v_num" not in text and "train/loss:" in text, "the bar shows the train loss, not v_num"
    run_ids = set()
    for job, loss in ((0, "ce"), (2, "mse")):
        job_dir = tmp_path / "sw" / str(job)
        assert read_metrics(job_dir)["loss"] == loss
        offline = list((job_dir / "wandb").glob("offline-run-*"))
        assert len(offline) == 1, f"job {job} should hold exactly its own W&B run: {offline}"
        (data,) = (f.read_bytes() for f in offline[0].glob("*.wandb"))  # its config: the overrides too
        assert b"overrides" in data and f'["loss={loss}","trainer.max_epochs=2"]'.encode() in data
        assert f"{loss} seed=0".encode() in data, "its run name: the loss and the seed"
        run_ids.add(offline[0].name.rsplit("-", 1)[-1])
    assert len(run_ids) == 2
