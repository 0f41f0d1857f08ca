"""``lossbench-eval``: a checkpoint tested with its own run's config reproduces that run's test metrics."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import preloaded
from tests.conftest import ROOT, read_metrics, run_cli


@pytest.mark.slow
def test_eval_of_the_best_checkpoint_reproduces_the_runs_test_metrics(tmp_path):
    args = ("loss=focal", "data_seed=3", "trainer.max_epochs=3", "logger=csv", "hydra.run.dir=run")
    run_cli(*args, cwd=tmp_path)
    trained = read_metrics(tmp_path / "run")
    best = trained["monitor"]["best_checkpoint"]
    assert "=" not in best.rsplit("/", 1)[1], "checkpoint names pass as ckpt_path=<file> unquoted"
    proc = preloaded.run(
        [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={best}", "hydra.run.dir=ev"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = read_metrics(tmp_path / "ev")
    assert evaluated["test"] == trained["test"]
    assert evaluated["evaluated_checkpoint"] == best and evaluated["loss"] == "focal"
    assert evaluated["data_seed"] == 3, "the run's own overrides were composed again"
    assert (tmp_path / "ev" / "predictions.npz").is_file()
    said = proc.stdout + proc.stderr
    assert "callbacks used to create the checkpoint" not in said and "Tip:" not in said
    assert "run dir" in said and (tmp_path / "ev" / "eval.log").is_file()

    def refused(*more: str) -> str:
        command = [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={best}", *more]
        proc = preloaded.run(command, cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, proc.stderr[-3000:]
        return proc.stderr

    record = (tmp_path / "run" / "metrics.json").read_text()
    assert "hydra.run.dir=" in refused("hydra.run.dir=run") and "holds a run (metrics.json" in refused(
        "hydra.run.dir=run"
    )
    assert (tmp_path / "run" / "metrics.json").read_text() == record, "the run's own record is kept"
    # a stressor refits the inputs' scaling on other training rows: not the run's test split any more
    assert "the data differ from those" in refused("data.imbalance_factor=5", "hydra.run.dir=ev2")

    # a DDP process above rank 0 (its rank variable) logs to its own file and leaves the summary to rank 0
    cmd = [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={best}", "hydra.run.dir=ev1"]
    env = {**os.environ, "LOCAL_RANK": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = sorted(p.name for p in (tmp_path / "ev1").glob("*.log"))
    assert logs == ["eval_ddp_process_1.log"], logs
    assert "run dir" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_eval_from_another_folder_finds_a_table_the_run_named_by_a_relative_path(tmp_path, wine_csv):
    """``data.path=wine.csv`` was relative to where the run started: eval run elsewhere reads that file; a
    refused eval leaves no run dir behind; a table whose classes are not the run's is refused."""
    args = ("data=table", "data.path=wine.csv", "data.target=label", "trainer.max_epochs=2", "logger=csv")
    run_cli(*args, "hydra.run.dir=run", cwd=tmp_path)
    trained = read_metrics(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def evaluate(*more: str) -> subprocess.CompletedProcess:
        command = [
            sys.executable,
            str(ROOT / "eval.py"),
            f"ckpt_path={trained['monitor']['best_checkpoint']}",
        ]
        return preloaded.run(
            [*command, *more],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )

    proc = evaluate("hydra.run.dir=ev")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_metrics(elsewhere / "ev")["test"] == trained["test"]
    refused = evaluate("data.target=nope")
    assert refused.returncode == 2 and "nope" in refused.stderr, refused.stderr[-2000:]
    assert not list(elsewhere.glob("outputs/eval/*")), "the refused eval's run dir was released"
    renamed = elsewhere / "renamed.csv"
    renamed.write_text((tmp_path / "wine.csv").read_text().replace("barbera", "nebbiolo"))
    other_classes = evaluate("data.path=renamed.csv")
    assert other_classes.returncode == 2, other_classes.stderr[-2000:]
    said = other_classes.stderr
    assert "class 0 is 'barbera' there and 'barolo' here" in said, said[-2000:]
