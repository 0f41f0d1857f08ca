"""resume=true and ckpt_path=: SIGKILL then resume, same metrics and W&B run; weights-only loading."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lossbench.errors import ConfigError
from lossbench.run import run
from tests import preloaded
from tests.conftest import ROOT, read_metrics, run_cli

RESUMABLE = ("trainer.max_epochs=15", "model.dropout=0.3", "optim=sgd")


def _logged_epochs(run_dir: Path, metric: str) -> list[int]:
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return [int(float(r["epoch"])) for r in csv.DictReader(f) if r.get(metric)]


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(make_cfg, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    killed.mkdir()
    reference = run(make_cfg(*RESUMABLE, "logger=csv", output_dir=full))  # in this process: the same numbers

    proc = preloaded.popen(
        [sys.executable, str(ROOT / "train.py"), *RESUMABLE],
        cwd=killed,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(killed.glob("outputs/train/*/*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before its first checkpoint"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = [p.parents[1] for p in killed.glob("outputs/train/*/*/checkpoints/last.ckpt")]
    assert not (run_dir / "metrics.json").exists(), "the run finished before it was killed"
    wandb_id = (run_dir / "wandb_run_id").read_text().strip()

    run_cli(*RESUMABLE, "resume=true", cwd=killed)
    assert len(list(killed.glob("outputs/train/*/*/metrics.json"))) == 1, (
        "resume must continue in the same dir"
    )
    resumed = read_metrics(run_dir)
    assert resumed["test"] == reference["test"]
    assert resumed["val"] == reference["val"]
    for metric in ("val/acc", "train/loss"):
        assert _logged_epochs(run_dir, metric) == list(range(15)), f"the CSV holds each {metric} once"
    # offline, W&B cannot continue a run: the continued part is a new W&B run (online the id continues)
    continued = (run_dir / "wandb_run_id").read_text().strip()
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and {r.name.rsplit("-", 1)[1] for r in runs} == {wandb_id, continued} != {wandb_id}


@pytest.mark.slow
def test_resume_without_an_earlier_run_is_a_clear_error(tmp_path):
    proc = run_cli("resume=true", "logger=none", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "resume=true found no earlier run" in proc.stderr + proc.stdout


@pytest.mark.smoke  # make test-fast's one training run: the default config, one epoch, its checkpoints
def test_checkpoints_load_weights_only(make_cfg, tmp_path):
    run(make_cfg("logger=none", "trainer.max_epochs=1"))
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and any(name.startswith("best_") for name in ckpts), ckpts
    for ckpt in (tmp_path / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)
        assert "state_dict" in state and "rng_states" in state


def test_a_resumed_plateau_schedule_takes_the_step_its_checkpoint_missed(make_cfg, tmp_path):
    """Lightning steps ReduceLROnPlateau after an epoch's checkpoints, and on a resume not again for that
    epoch: continued from epoch 1, its last checkpoint held 2 steps where the uninterrupted run's held 3."""
    plateau = "{_target_:torch.optim.lr_scheduler.ReduceLROnPlateau,_partial_:true,patience:0,factor:0.5}"
    common = (
        "logger=none",
        "trainer.precision=64-true",
        "monitor.metric=val/loss",
        f"+optim.scheduler={plateau}",
    )

    def last(run_dir: Path) -> dict:
        return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"][0]

    run(make_cfg(*common, "trainer.max_epochs=4", output_dir=tmp_path / "full"), overrides=[])
    run(make_cfg(*common, "trainer.max_epochs=2", output_dir=tmp_path / "cut"), overrides=[])
    cut = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    run(
        make_cfg(*common, "trainer.max_epochs=4", f"ckpt_path={cut}", output_dir=tmp_path / "on"),
        overrides=[],
    )
    full, continued = last(tmp_path / "full"), last(tmp_path / "on")
    assert continued["last_epoch"] == full["last_epoch"] == 3  # the epoch-3 checkpoint precedes its step
    assert continued == full, "the same bad-epoch count, best value and rates"
    wine = make_cfg(*common, "data=wine", f"ckpt_path={cut}", output_dir=tmp_path / "wine")
    with pytest.raises(ConfigError, match=r"holds a model of another shape: .* leave out ckpt_path="):
        run(wine, overrides=[])  # digits' weights for wine's 13 features: one line, before any training
    assert not (tmp_path / "wine" / "checkpoints").exists()
