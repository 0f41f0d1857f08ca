"""Fault injection through the real commands: a sweep killed at a random moment and continued, each artefact
of a finished sweep cut in half and then compared and continued, a cut checkpoint given to eval. Each ends
in the uninterrupted sweep's results, a clean recovery, or one line naming the file and the fix."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import preloaded
from tests.conftest import ROOT, advise_in_process, run_cli

pytestmark = pytest.mark.slow

SWEEP = (
    "loss=ce",
    "seed=0,1,2,3,4",
    "logger=csv",
    "trainer.max_epochs=4",
    "callbacks.rich_progress_bar=null",
)
#: the artefact cut in half in job i of the copy
CUT = ("metrics.json", "csv/metrics.csv", "checkpoints/last.ckpt", "predictions.npz", "best checkpoint")


def _compare(sweep: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "lossbench.cli",
        "compare",
        str(sweep),
        "--no-plots",
        "--out",
        str(sweep) + "_rep",
    ]
    return preloaded.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )


def _tested(sweep: Path) -> dict[str, dict]:
    return {
        d.name: json.loads((d / "metrics.json").read_text())["test"] for d in sorted(sweep.glob("[0-9]*"))
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted sweep."""
    root = tmp_path_factory.mktemp("reference")
    done = run_cli("-m", *SWEEP, f"hydra.sweep.dir={root / 'sweep'}", cwd=root, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root / "sweep"


def test_each_artefact_cut_in_half_is_named_by_compare_and_the_continued_sweep_recovers(reference, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(reference, sweep)
    for job, name in enumerate(CUT):
        files = sweep / str(job)
        path = (
            next((files / "checkpoints").glob("best_*.ckpt")) if name == "best checkpoint" else files / name
        )
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    compared = _compare(sweep)  # no run is usable: nothing to compare, each named
    assert compared.returncode == 1
    assert "finished (5 runs, 0 ok, 5 failed or missing): nothing to compare" in compared.stderr
    problems = [line for line in compared.stderr.splitlines() if line.startswith("  ")]
    assert len(problems) == 5 and all(("damaged" in p or "unreadable" in p) for p in problems), problems

    continued = run_cli(
        "-m", *SWEEP, "resume=true", f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=False, timeout=600
    )
    assert continued.returncode == 0, continued.stdout[-2000:]
    assert (
        continued.stdout.count("the run is trained again from the start")
        + continued.stderr.count("the run is trained again from the start")
        == 5
    )
    assert _tested(sweep) == _tested(reference)
    assert "(5 runs, 5 ok, 0 failed or missing)" in _compare(sweep).stdout


def test_a_sweep_killed_at_a_random_moment_continues_to_the_same_results(reference, tmp_path):
    seed = time.time_ns() % 10_000
    delay = random.Random(seed).uniform(0.0, 8.0)
    sweep = tmp_path / "sweep"
    proc = preloaded.popen(
        [sys.executable, str(ROOT / "train.py"), "-m", *SWEEP, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (sweep / "0" / "checkpoints").is_dir() and proc.poll() is None:  # training has begun
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    continued = run_cli(
        "-m", *SWEEP, "resume=true", f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=False, timeout=600
    )
    assert continued.returncode == 0, (
        f"killed {delay:.2f} s into training (seed {seed}): {continued.stdout[-2000:]}"
    )
    assert _tested(sweep) == _tested(reference), f"killed {delay:.2f} s into training (seed {seed})"


def test_eval_of_a_cut_checkpoint_is_one_line_naming_it(reference, tmp_path):
    shutil.copytree(reference / "0", tmp_path / "run")
    ckpt = next((tmp_path / "run" / "checkpoints").glob("best_*.ckpt"))
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    done = preloaded.run(
        [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={ckpt}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and str(ckpt) in lines[0] and "cut off" in lines[0]


def test_advise_stopped_by_sigterm_says_how_to_continue_and_the_rerun_repeats_nothing(
    tmp_path, monkeypatch, capsys
):
    """``lossbench advise`` stopped by SIGTERM in its final runs; the same command again (in this process,
    its budget counted from its call, at most 3 replicates) keeps the final runs that had finished."""
    import optuna

    lossbench = Path(sys.executable).parent / "lossbench"
    out = tmp_path / "advise"
    cmd = [
        str(lossbench),
        "advise",
        "--budget",
        "1m",  # 45 s: on a slow, busy machine not even the smallest plan fitted (exit 2)
        "--out",
        str(out),
        "--pack",
        "1",  # final runs finish one at a time (packed, a round's all finish together, maybe the last)
        "data=digits",
        "trainer.max_epochs=3",
    ]
    proc = preloaded.popen(
        cmd, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while (
        not list(out.glob("final/*/*/metrics.json")) and proc.poll() is None
    ):  # stop once a final run is done
        assert time.monotonic() < deadline
        time.sleep(0.1)
    if proc.poll() is not None:
        ended = proc.communicate()[1][-2000:]
        raise AssertionError(f"advise ended before it was stopped: no final run was seen\n{ended}")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    said = [line for line in err.strip().splitlines() if "stopped by" in line or "Traceback" in line]
    assert proc.returncode == 143 and len(said) == 1 and "Continue with:" in said[0], err[-2000:]
    assert said[0] == err.strip().splitlines()[-1]
    kept = {p: p.stat().st_mtime_ns for p in out.glob("final/*/*/metrics.json")}
    assert kept
    monkeypatch.chdir(tmp_path)
    assert advise_in_process(monkeypatch, cmd[1:]) == 0
    assert "recommendation:" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in kept} == kept, "finished final runs are kept as they were"
    storage = f"sqlite:///{out / 'study.db'}"
    for summary in optuna.get_all_study_summaries(storage):
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        done = [
            t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        ]
        assert len({tuple(sorted(t.params.items())) for t in done}) == len(done), summary.study_name


def test_eval_names_a_run_dir_it_cannot_write_in_one_line(reference, tmp_path):
    (tmp_path / "afile").write_text("kept")
    best = next((reference / "0" / "checkpoints").glob("best_*.ckpt"))
    done = preloaded.run(
        [
            sys.executable,
            str(ROOT / "eval.py"),
            f"ckpt_path={best}",
            f"hydra.run.dir={tmp_path / 'afile' / 'ev'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "a file stands where a folder is needed" in lines[0]
    assert (tmp_path / "afile").read_text() == "kept"
