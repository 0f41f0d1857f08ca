"""``lossbench tune``: equal budgets per loss, the test split unread while tuning, final runs, resume
after SIGKILL, pruning, parallel workers, and the expected-best-versus-budget estimator."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from lossbench.cli import main as cli_main
from lossbench.run import run
from lossbench.tune.pruning import OptunaPruning
from tests import preloaded
from tests.conftest import ROOT, start_command

FAST = ("trainer.max_epochs=2", "logger=csv", "callbacks.rich_progress_bar=null")


def studies(out: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = f"sqlite:///{out / 'study.db'}"
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
        for s in optuna.get_all_study_summaries(storage)
    }


def tune_command(out: Path, *args: str) -> list[str]:
    """``lossbench tune --out OUT ARGS`` as a command line, run with this interpreter."""
    return [sys.executable, "-m", "lossbench.cli", "tune", "--out", str(out), *args]


def counted(trials) -> int:
    return sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)


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
        assert m["config"]["task_name"] == "tune_tune"
        assert m["config"]["tags"] == [trial_dir.parent.name, "digits", "mlp", "trial"], "a run's tags too"
    for loss in ("ce", "focal"):
        finals = [json.loads((d / "metrics.json").read_text()) for d in (out / "final" / loss).iterdir()]
        assert len(finals) == 2 and all(f["status"] == "ok" and f["test"] for f in finals)
        assert all(f["config"]["tags"] == [loss, "digits", "mlp", "final"] for f in finals)
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
def test_sigkill_after_the_second_trial_then_the_same_command_keeps_every_loss_at_three_distinct_trials(
    tmp_path, monkeypatch
):
    """The command is SIGKILLed as ce's third trial starts; the same command again (in this process)
    ends with three distinct finished trials per loss."""
    out = tmp_path / "tune"
    cmd = tune_command(out, "--loss", "ce,focal", "--trials", "3", "--seeds", "1", "--pack", "1")
    cmd += ["trainer.max_epochs=2", "logger=none"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "first.log").open("w")
    proc = preloaded.popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    trials = out / "trials" / "ce"  # trials run one after another: a third starts once two are told

    def started() -> int:
        return len(list(trials.iterdir())) if trials.is_dir() else 0

    while started() < 3:
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = studies(out)
    assert counted(before["ce"]) == 2 and counted(before.get("focal", [])) == 0
    monkeypatch.chdir(tmp_path)
    assert cli_main(cmd[3:]) == 0
    after = studies(out)
    for loss, trials in after.items():
        done = [
            t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        ]
        configurations = {tuple(sorted(t.params.items())) for t in done}
        assert len(done) == 3 and len(configurations) == 3, (loss, [t.params for t in done])
    assert len(list((out / "final").glob("*/*/metrics.json"))) == 2


@pytest.mark.slow
def test_sigkill_during_a_packed_batch_then_the_same_command_trains_that_batch_again(tmp_path, monkeypatch):
    """``--pack`` (default 8): ce's four trials train as one packed model. SIGKILLed once they have written
    a checkpoint, the command run again (in this process) fails the four trials left running, trains their
    configurations first, and ends with four distinct finished trials per loss and every final run."""
    out = tmp_path / "tune"
    cmd = tune_command(out, "--loss", "ce,focal", "--trials", "4", "--seeds", "1")
    cmd += ["trainer.max_epochs=4", "logger=none"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "first.log").open("w")
    proc = preloaded.popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not list((out / "trials" / "ce").glob("*/checkpoints/last.ckpt")):
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    running = [t for t in studies(out)["ce"] if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 4, "the batch: four trials asked together, trained as one model"
    monkeypatch.chdir(tmp_path)
    assert cli_main(cmd[3:]) == 0
    after = studies(out)
    for loss, trials in after.items():
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len({tuple(sorted(t.params.items())) for t in done}) == len(done) == 4, loss
    complete = optuna.trial.TrialState.COMPLETE
    retried = {tuple(sorted(t.params.items())) for t in after["ce"] if t.state == complete}
    assert {tuple(sorted(t.params.items())) for t in running} <= retried, "the killed batch trained again"
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


def test_final_runs_trained_packed_equal_their_ordinary_runs(tmp_path):
    from lossbench.record import read_record
    from lossbench.tune.final import final_run, packed_final_runs
    from lossbench.tune.study import Plan

    def plan(name: str) -> Plan:
        return Plan(losses=["focal", "ce"], trials=1, seeds=2, out=tmp_path / name, overrides=list(FAST))

    params = {"focal": {"optim.optimizer.lr": 0.003, "loss.gamma": 1.5}, "ce": {"optim.optimizer.lr": 0.01}}
    monitor = ("val/acc", "max")
    runs = {(loss, seed) for loss in params for seed in (0, 1)}
    assert packed_final_runs(plan("packed"), params, [0, 1], monitor) == runs
    for loss, seed in sorted(runs):
        final_run(plan("ordinary"), loss, seed, params[loss], monitor)
        packed = read_record(tmp_path / "packed" / "final" / loss / str(seed))
        ordinary = read_record(tmp_path / "ordinary" / "final" / loss / str(seed))
        assert packed.ok and packed.loss == ordinary.loss == loss, "each run keeps its own loss name"
        assert packed.overrides == ordinary.overrides == [*FAST, f"loss={loss}", f"seed={seed}"]
        assert packed.test.keys() == ordinary.test.keys()
        assert max(abs(packed.test[k] - ordinary.test[k]) for k in packed.test) <= 1e-6
        assert (tmp_path / "packed" / "final" / loss / str(seed) / "checkpoints" / "last.ckpt").is_file()
    assert packed_final_runs(plan("packed"), params, [0, 1], monitor) == set(), "finished runs are kept"


def test_in_float64_a_packed_final_run_is_its_ordinary_run_to_the_last_bit(tmp_path):
    """Its recalibrated metrics too: here ``test/ece_ts`` moved by 1.3e-8 when the ordinary run took its
    temperature back from the logged (float32) value instead of the one it fitted."""
    from lossbench.record import read_record
    from lossbench.tune.final import final_run, packed_final_runs
    from lossbench.tune.study import Plan

    overrides = ["trainer.max_epochs=3", "logger=csv", "trainer.precision=64-true"]
    params = {
        "optim.optimizer.lr": 0.002121995851392191,
        "optim.optimizer.weight_decay": 0.0001870077424952592,
    }
    params = {"focal": {**params, "loss.gamma": 0.9213117463977938}}
    monitor = ("val/acc", "max")
    packed = Plan(losses=["focal"], trials=1, seeds=2, out=tmp_path / "packed", overrides=overrides)
    assert packed_final_runs(packed, params, [0, 1], monitor) == {("focal", 0), ("focal", 1)}
    ordinary = Plan(losses=["focal"], trials=1, seeds=2, out=tmp_path / "ordinary", overrides=overrides)
    final_run(ordinary, "focal", 1, params["focal"], monitor)
    mine, theirs = (read_record(tmp_path / name / "final" / "focal" / "1") for name in ("packed", "ordinary"))
    assert "packed_group" in (mine.timings or {}) and "test/ece_ts" in mine.test
    assert mine.test == theirs.test and mine.val == theirs.val


@pytest.mark.slow
def test_a_tune_stopped_in_its_packed_final_runs_continues_them_from_their_checkpoints(tmp_path):
    """SIGTERM while the final runs of ce and focal train packed; the same command again continues both
    from the epoch they reached, packed, and each ends as an uninterrupted packed final run (float64)."""
    from lossbench.record import read_record
    from lossbench.tune.final import packed_final_runs
    from lossbench.tune.study import Plan

    out, overrides = tmp_path / "tune", ["trainer.max_epochs=10", "logger=csv", "trainer.precision=64-true"]
    cmd = tune_command(out, "--loss", "ce,focal", "--trials", "1", "--seeds", "1", "--pack", "2", *overrides)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = start_command(cmd, tmp_path, {"PYTHONPATH": str(ROOT)})
    last = out / "final" / "focal" / "0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file():  # the packed final runs have trained an epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    said, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "continues from its last epoch" in said, said[-3000:]
    assert not read_record(out / "final" / "focal" / "0").ok, "stopped before the final runs ended"
    again = preloaded.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    continued = [line for line in log.splitlines() if " continues from epoch " in line]
    assert [line.split(" continues")[0].split("] - ")[-1] for line in continued] == [
        "final ce seed 0",
        "final focal seed 0",
    ], log[-3000:]
    assert ", packed)" in log and "trial" not in log.split(continued[0])[1], "no trial is trained again"
    params = {
        loss: json.loads((out / "final" / loss / "0" / "tuned.json").read_text()) for loss in ("ce", "focal")
    }
    reference = Plan(
        losses=["ce", "focal"], trials=1, seeds=1, out=tmp_path / "ref", overrides=overrides, pack=2
    )
    packed_final_runs(reference, params, [0], ("val/acc", "max"))
    for loss in ("ce", "focal"):
        mine, theirs = (read_record(root / "final" / loss / "0") for root in (out, tmp_path / "ref"))
        assert mine.ok and mine.test == theirs.test and mine.val == theirs.val
        rows = (out / "final" / loss / "0" / "csv" / "metrics.csv").read_text().splitlines()
        ref_rows = (tmp_path / "ref" / "final" / loss / "0" / "csv" / "metrics.csv").read_text().splitlines()
        assert rows[0] == ref_rows[0] and sorted(rows[1:]) == sorted(ref_rows[1:]), "each epoch logged once"


def test_a_packed_batch_of_trials_tells_each_study_what_its_trials_trained_one_by_one_tell(tmp_path):
    """The same three configurations of focal, asked together and trained packed (``--pack 3``) or one at
    a time (``--pack 1``): each trial's value and record agree within 1e-6."""
    from lossbench.record import read_record
    from lossbench.tune import study as st

    configurations = [
        {"optim.optimizer.lr": lr, "optim.optimizer.weight_decay": 1e-4, "loss.gamma": gamma}
        for lr, gamma in ((0.003, 0.5), (0.01, 2.0), (0.001, 4.0))
    ]
    values = {}
    for pack in (3, 1):
        out = tmp_path / str(pack)
        plan = st.Plan(["focal"], trials=3, seeds=1, out=out, overrides=list(FAST), pack=pack)
        plan.out.mkdir()
        study = st.open_study(plan, "focal", "max")
        for params in configurations:
            study.enqueue_trial(params)
        st.tune_loss(plan, "focal", ("val/acc", "max"))
        trials = st.open_study(plan, "focal", "max").get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert [t.params for t in trials] == configurations
        values[pack] = [t.value for t in trials]
        records = [read_record(plan.out / "trials" / "focal" / str(t.number)) for t in trials]
        assert all(r.ok and not r.test for r in records), "tuning never reads test"
        assert all(("packed_replicas" in (r.timings or {})) == (pack == 3) for r in records)
    assert max(abs(a - b) for a, b in zip(values[3], values[1], strict=True)) <= 1e-6
