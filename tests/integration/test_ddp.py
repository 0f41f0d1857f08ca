"""DDP on CPU (2 gloo processes) matches one process with the same global batch."""

from __future__ import annotations

import csv
import signal
import sys
import time
from pathlib import Path

import pytest

from lossbench.resume import checkpoint_epoch, checkpoint_val
from lossbench.run import run
from tests.conftest import ROOT, read_metrics, run_cli, start_command


@pytest.mark.slow
def test_two_process_cpu_ddp_matches_one_process(make_cfg, tmp_path):
    """The one-process run in this process, the DDP run on the command line with the default loggers."""
    common = ("model.dropout=0", "trainer.max_epochs=3")
    run(make_cfg(*common, "logger=csv", "data.batch_size=64", output_dir=tmp_path / "single"))
    run_cli(
        *common, "logger=default", "trainer=ddp_cpu", "data.batch_size=32", "hydra.run.dir=ddp", cwd=tmp_path
    )
    single, ddp = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp")
    assert ddp["data_info"]["n_train"] % 2 == 1, "an odd training set exercises the uneven last batch"
    # same samples per step and an exact gradient average: only float summation order differs
    for key, value in single["test"].items():
        assert abs(ddp["test"][key] - value) < 1e-4, (key, value, ddp["test"][key])
    assert ddp["test"]["test/acc"] == single["test"]["test/acc"]
    # rank 0 alone writes the loggers' output
    assert len(list((tmp_path / "ddp" / "wandb").glob("offline-run-*"))) == 1
    rows = {d: (tmp_path / d / "csv" / "metrics.csv").read_text().splitlines() for d in ("single", "ddp")}
    assert len(rows["ddp"]) == len(rows["single"]) > 3


@pytest.mark.slow
def test_ddp_spawn_stops_on_sigterm_continues_and_records_its_best_and_epochs(tmp_path):
    """``trainer.strategy=ddp_spawn`` (the strategy the DDP-in-a-sweep refusal names) fits and tests in
    processes it spawns, which a SIGTERM to the run does not reach: they are ended with it (they trained on
    to max_epochs), the stop names the epoch they were in, and the continued run records its best value
    and epochs from its checkpoints (this process's trainer has neither) and keeps the fit's CSV rows
    beside the test's."""
    args = ("trainer=ddp_cpu", "trainer.strategy=ddp_spawn", "trainer.max_epochs=25", "logger=csv")
    args += ("hydra.run.dir=run",)
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = start_command([sys.executable, str(ROOT / "train.py"), *args], tmp_path)
    deadline = time.monotonic() + 180
    while not (last.is_file() and checkpoint_epoch(last) >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "no second epoch was saved"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    held = checkpoint_epoch(last)
    assert proc.returncode == 143, out[-2000:]
    assert f"during epoch {held + 1}: {last} holds epoch {held}, the last one finished" in out, out[-2000:]
    assert held < 20 and read_metrics(run_dir)["status"] == "interrupted", "its workers trained no further"

    run_cli(*args, "resume=true", cwd=tmp_path)
    record = read_metrics(run_dir)
    assert record["status"] == "ok" and record["epochs"] == 25
    with (run_dir / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    val = [float(r["val/acc"]) for r in rows if r.get("val/acc")]
    assert [r["epoch"] for r in rows if r.get("val/acc")] == [str(e) for e in range(25)], "each epoch once"
    assert [r["epoch"] for r in rows if r.get("train/loss")] == [str(e) for e in range(25)]
    assert len([r for r in rows if r.get("test/acc")]) == 1
    best = Path(record["monitor"]["best_checkpoint"])
    assert record["monitor"]["best"] == checkpoint_val(best)["val/acc"] == max(val)
