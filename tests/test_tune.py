"""``lossbench tune``: equal budgets per loss, the test split unread while tuning, final runs, resume
after SIGKILL, pruning, parallel workers, and the expected-best-versus-budget estimator."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf

from lossbench.cli import main as cli_main
from lossbench.config import CONFIG_DIR, group_options
from lossbench.report.budget import expected_max, ranking_changes
from lossbench.run import run
from lossbench.tune.pruning import OptunaPruning
from lossbench.tune.space import search_space
from tests.conftest import ROOT

FAST = ("trainer.max_epochs=2", "logger=csv", "callbacks.rich_progress_bar=null")


def studies(out: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = f"sqlite:///{out / 'study.db'}"
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
        for s in optuna.get_all_study_summaries(storage)
    }


def counted(trials) -> int:
    return sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)


# --- search spaces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_DIR / "search").glob("*.yaml")))
def test_every_search_space_names_real_keys(name):
    if name == "optim":
        keys = {p.key for p in search_space("ce")}
        assert {"optim.optimizer.lr", "optim.optimizer.weight_decay"} <= keys
        return
    assert name in group_options("loss"), f"search/{name}.yaml is not a loss option"
    loss_cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    own = [p for p in search_space(name) if p.key.startswith("loss.")]
    assert own, f"search/{name}.yaml declares no loss hyper-parameter"
    for p in own:
        assert p.key.removeprefix("loss.") in loss_cfg, f"{p.key} is not a key of loss/{name}.yaml"


# --- expected best score vs budget ------------------------------------------------------------------------
def test_expected_max_without_replacement_matches_enumeration():
    rng = np.random.default_rng(0)
    v = rng.normal(size=7)
    curve = expected_max(list(v), higher_is_better=True)
    for n in range(1, len(v) + 1):
        exact = np.mean([max(c) for c in itertools.combinations(v, n)])
        assert curve[n - 1] == pytest.approx(exact, abs=1e-12)
    assert curve[0] == pytest.approx(v.mean()) and curve[-1] == pytest.approx(v.max())
    low = expected_max(list(v), higher_is_better=False)
    assert low[-1] == pytest.approx(v.min()) and np.all(np.diff(low) <= 1e-12)


def test_ranking_change_is_flagged():
    steady = {"a": np.array([0.5, 0.6, 0.7]), "b": np.array([0.4, 0.5, 0.6])}
    assert ranking_changes(steady, higher_is_better=True) is None
    crossing = {"a": np.array([0.6, 0.61, 0.62]), "b": np.array([0.4, 0.6, 0.7])}
    assert ranking_changes(crossing, higher_is_better=True) == ("a > b", "b > a")
    tied = {"a": np.array([0.6, 0.7]), "b": np.array([0.5, 0.7])}
    assert ranking_changes(tied, higher_is_better=True) == ("a > b", "a = b")


# --- pruning ------------------------------------------------------------------------------------------------
def test_pruning_callback_stops_a_hopeless_trial(make_cfg):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 0"):
        run(
            make_cfg("logger=none", "trainer.max_epochs=5"), extra_callbacks=[OptunaPruning(trial, "val/acc")]
        )
    assert list(study.trials[0].intermediate_values) == [0], "epoch 0's value was reported"


# --- the protocol -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tune_gives_every_loss_the_same_budget_then_final_runs_and_a_report(tmp_path):
    out = tmp_path / "tune"
    args = ["tune", "--loss", "ce,focal", "--trials", "3", "--seeds", "2", "--out", str(out), *FAST]
    assert cli_main(args) == 0
    trials = studies(out)
    assert set(trials) == {"ce", "focal"} and all(counted(t) == 3 for t in trials.values())
    focal = {p for t in trials["focal"] for p in t.params}
    assert focal == {"optim.optimizer.lr", "optim.optimizer.weight_decay", "loss.gamma"}
    for trial_dir in (out / "trials").glob("*/*"):
        m = json.loads((trial_dir / "metrics.json").read_text())
        assert m["test"] == {} and not (trial_dir / "predictions.npz").exists(), "tuning never reads test"
        # the W&B group is the task name (logger/wandb.yaml): one group per tuning run
        assert m["config"]["task_name"] == "tune_tune" and "trial" in m["config"]["tags"]
    for loss in ("ce", "focal"):
        finals = [json.loads((d / "metrics.json").read_text()) for d in (out / "final" / loss).iterdir()]
        assert len(finals) == 2 and all(f["status"] == "ok" and f["test"] for f in finals)
        best = json.loads((out / "final" / loss / "0" / "tuned.json").read_text())
        assert finals[0]["config"]["optim"]["optimizer"]["lr"] == pytest.approx(best["optim.optimizer.lr"])
    report = (out / "report" / "report.md").read_text()
    assert "## Tuning budget" in report and "focal" in report and (out / "report" / "report.csv").is_file()
    assert (out / "report" / "tuning_budget.png").is_file()
    # the same command again: nothing is trained twice
    stamps = {p: p.stat().st_mtime_ns for p in (out / "final").rglob("metrics.json")}
    assert cli_main(args) == 0
    assert all(counted(t) == 3 for t in studies(out).values())
    assert {p: p.stat().st_mtime_ns for p in (out / "final").rglob("metrics.json")} == stamps
    # another search in the same directory is refused
    assert cli_main([*args[:4], "5", *args[5:]]) == 2


@pytest.mark.slow
def test_sigkill_then_the_same_command_continues_without_losing_a_trial(tmp_path):
    out = tmp_path / "tune"
    cmd = [
        sys.executable,
        "-m",
        "lossbench.cli",
        "tune",
        "--loss",
        "ce,mse",
        "--trials",
        "4",
        "--seeds",
        "1",
        "--out",
        str(out),
        "trainer.max_epochs=3",
        "logger=none",
        "callbacks.rich_progress_bar=null",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill while the second study is under way
        time.sleep(0.5)
        if (out / "trials" / "mse").is_dir():
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = studies(out)
    assert counted(before["ce"]) == 4 and counted(before.get("mse", [])) < 4
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    after = studies(out)
    assert all(counted(t) == 4 for t in after.values())
    failed = [t for t in after["mse"] if t.state == optuna.trial.TrialState.FAIL]
    retried = [t for t in after["mse"] if "retry_of" in t.user_attrs]
    assert len(failed) == len(retried) <= 1 and all(r.params == failed[0].params for r in retried)
    assert len(list((out / "final").glob("*/*/metrics.json"))) == 2


@pytest.mark.slow
def test_two_workers_share_the_budget_exactly(tmp_path):
    out = tmp_path / "tune"
    args = [
        "tune",
        "--loss",
        "ce,focal",
        "--trials",
        "3",
        "--seeds",
        "1",
        "--workers",
        "2",
        "--out",
        str(out),
        "trainer.max_epochs=1",
        "logger=none",
        "callbacks.rich_progress_bar=null",
    ]
    assert cli_main(args) == 0
    trials = studies(out)
    assert all(counted(t) == 3 and len(t) == 3 for t in trials.values()), "no trial beyond the budget"
    values = [t.params["optim.optimizer.lr"] for t in trials["ce"]]
    assert len(set(values)) == 3, "the workers sample different configurations"
    assert not math.isnan(
        json.loads(next((out / "final").glob("ce/0/metrics.json")).read_text())["test"]["test/acc"]
    )


@pytest.mark.slow
def test_journal_file_storage_for_several_machines(tmp_path):
    out, journal = tmp_path / "tune", tmp_path / "shared" / "studies.log"
    journal.parent.mkdir()
    args = [
        "tune",
        "--loss",
        "ce",
        "--trials",
        "2",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--storage",
        str(journal),
        "trainer.max_epochs=1",
        "logger=none",
        "callbacks.rich_progress_bar=null",
    ]
    assert cli_main(args) == 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert counted(optuna.load_study(study_name="ce", storage=storage).trials) == 2
    assert not (out / "study.db").exists()


def test_an_interrupted_trial_is_queued_again(tmp_path, monkeypatch):
    from lossbench.interrupt import RunInterrupted
    from lossbench.tune import study as st

    def stopped(cfg, callbacks):
        raise RunInterrupted("SIGTERM", "stopped")

    monkeypatch.setattr(st, "run_job", stopped)
    plan = st.Plan(losses=["focal"], trials=2, seeds=1, out=tmp_path)
    study = st.open_study(plan, "focal", "maximize")
    trial = st.next_trial(plan, study)
    with pytest.raises(RunInterrupted):
        st.run_trial(plan, "focal", ("val/acc", "max"), trial)
    (failed,) = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    (queued,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert queued.system_attrs["fixed_params"] == failed.params  # what the next trial asked will use
    assert queued.user_attrs["retry_of"] == failed.number
