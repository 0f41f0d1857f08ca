"""DDP on CPU (2 gloo processes) matches one process with the same global batch."""

from __future__ import annotations

import csv

import pytest

from lossbench.run import run
from tests.conftest import read_metrics, run_cli


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
def test_ddp_spawn_keeps_the_fit_rows_beside_the_test_row(tmp_path):
    """``trainer.strategy=ddp_spawn`` (the strategy the DDP-in-a-sweep refusal names) fits and tests in
    processes it spawns from this one's logger: the test's writer rewrote the CSV with its own columns and
    the run failed, its curves gone."""
    args = ("trainer=ddp_cpu", "trainer.strategy=ddp_spawn", "trainer.max_epochs=2", "logger=csv")
    run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    assert read_metrics(tmp_path / "run")["status"] == "ok"
    with (tmp_path / "run" / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows if r.get("val/acc")] == ["0", "1"]
    assert [r["epoch"] for r in rows if r.get("train/loss")] == ["0", "1"]
    assert len([r for r in rows if r.get("test/acc")]) == 1
