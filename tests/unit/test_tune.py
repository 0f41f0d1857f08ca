"""``lossbench tune``: equal budgets per loss, the test split unread while tuning, final runs, resume
after SIGKILL, pruning, parallel workers, and the expected-best-versus-budget estimator."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf

from lossbench.config import CONFIG_DIR, loss_options
from lossbench.report.budget import expected_max, ranking_changes
from lossbench.tune.space import SPACES_DIR, search_space


# --- search spaces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
def test_every_search_space_names_real_keys(name):
    if name == "optim":
        keys = {p.key for p in search_space("ce")}
        assert {"optim.optimizer.lr", "optim.optimizer.weight_decay"} <= keys
        return
    assert name in loss_options(), f"tune/spaces/{name}.yaml is not a loss option"
    loss_cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    own = [p for p in search_space(name) if p.key.startswith("loss.")]
    assert own, f"tune/spaces/{name}.yaml declares no loss hyper-parameter"
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


# --- the protocol -------------------------------------------------------------------------------------------


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


def test_a_stale_trial_whose_run_finished_is_told_its_value_not_trained_again(tmp_path):
    """A packed batch is told one trial after another: a stop in between left finished trials running,
    and the next tune marked them failed and trained their parameters again. One whose run dir holds a
    finished record is told its value; one without is queued again."""
    import json

    from lossbench.tune import study as st

    plan = st.Plan(losses=["focal"], trials=3, seeds=1, out=tmp_path)
    study = st.open_study(plan, "focal", "maximize")
    finished, killed = st.next_trials(plan, study, 2)
    done = st.trial_dir(plan, "focal", finished.number)
    done.mkdir(parents=True)
    record = {"status": "ok", "loss": "focal", "monitor": {"metric": "val/acc", "mode": "max", "best": 0.91}}
    (done / "metrics.json").write_text(json.dumps(record))
    study = st.open_study(plan, "focal", "maximize")  # the next process
    assert st.recover_stale(plan, "focal", study) == 1
    told = study.trials[finished.number]
    assert told.state is optuna.trial.TrialState.COMPLETE and told.value == 0.91
    assert study.trials[killed.number].state is optuna.trial.TrialState.FAIL
    (queued,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert queued.user_attrs["retry_of"] == killed.number


def test_trials_that_never_validated_are_not_called_diverged(tmp_path, monkeypatch):
    """``+trainer.max_steps=5`` ends each trial before its first validation: tune said "every trial
    diverged" and advised a narrower learning-rate range."""
    from lossbench.errors import ConfigError
    from lossbench.tune import study as st

    def unvalidated(cfg, callbacks):
        return {"monitor": {"metric": "val/acc", "mode": "max", "best": None}, "test": {}, "status": "ok"}

    monkeypatch.setattr(st, "run_job", unvalidated)
    monkeypatch.setattr(st, "job_line", lambda summary: "best val/acc=n/a")
    plan = st.Plan(losses=["focal"], trials=2, seeds=1, out=tmp_path)
    study = st.open_study(plan, "focal", "max")
    for _ in range(2):
        st.run_trial(plan, "focal", ("val/acc", "max"), st.next_trial(plan, study))
    with pytest.raises(ConfigError, match="no trial of focal was validated: each stopped before its first"):
        st.best_params(plan, "focal", "max")


def _trial_params(plan, loss: str, n: int) -> list[dict]:
    """Ask and finish ``n`` trials of ``loss``, each in a study opened anew (as a continued process would)."""
    from lossbench.tune import space as sp
    from lossbench.tune import study as st

    asked = []
    for _ in range(n):
        study = st.open_study(plan, loss, "max")
        trial = st.next_trial(plan, study)
        params = {p.key: p.suggest(trial) for p in sp.search_space(loss)}
        study.tell(trial, 0.5)
        asked.append(params)
    return asked


def test_a_continued_tune_asks_new_configurations(tmp_path):
    from lossbench.tune import study as st

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    plan = st.Plan(losses=["focal"], trials=4, seeds=1, out=tmp_path / "a")
    first = _trial_params(plan, "focal", 2)  # then the process is killed: a new one opens the study
    rest = _trial_params(plan, "focal", 2)
    keys = [tuple(sorted(p.items())) for p in first + rest]
    assert len(set(keys)) == 4, "no configuration is asked twice"
    again = _trial_params(st.Plan(losses=["focal"], trials=4, seeds=1, out=tmp_path / "b"), "focal", 4)
    assert again == first + rest, "the stream follows from the stored trials, so it is reproducible"


def test_a_repeated_configuration_is_not_trained_again(tmp_path, monkeypatch):
    from lossbench.tune import study as st

    monkeypatch.setattr(st, "run_job", lambda *a, **k: pytest.fail("a repeat must not train"))
    plan = st.Plan(losses=["focal"], trials=2, seeds=1, out=tmp_path)
    (done,) = _trial_params(plan, "focal", 1)
    study = st.open_study(plan, "focal", "max")
    study.enqueue_trial(done)  # the sampler proposes exactly what was trained
    st.run_trial(plan, "focal", ("val/acc", "max"), st.next_trial(plan, study))
    (repeat,) = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert repeat.user_attrs["repeat_of"] == 0 and st.counted(study) == 1


# --- what is refused before anything trains -------------------------------------------------------------
def test_overrides_a_loss_cannot_take_or_that_the_search_replaces_are_refused(tmp_path):
    from lossbench.errors import ConfigError
    from lossbench.tune.jobs import check_overrides_apply

    with pytest.raises(ConfigError, match=r"--loss ce cannot take these overrides \(.*loss\.gamma"):
        check_overrides_apply(["loss.gamma=2"], ["focal_g3", "ce"], tmp_path)
    with pytest.raises(
        ConfigError, match=r"loss.gamma=2: the search tunes loss.gamma for focal \(spaces/focal"
    ):
        check_overrides_apply(["loss.gamma=2"], ["focal"], tmp_path)
    with pytest.raises(ConfigError, match=r"optim.optimizer.lr=0.1: .* for ce \(spaces/optim.yaml"):
        check_overrides_apply(["trainer.max_epochs=2", "optim.optimizer.lr=0.1"], ["ce"], tmp_path)
    check_overrides_apply(["trainer.max_epochs=2", "data=wine"], ["ce", "focal"], tmp_path)
    for wrong in ("trainer.nonexistent=1", "experiment=nope"):  # no loss could take them: not a loss's fault
        with pytest.raises(ConfigError, match=r"^these overrides do not compose: ") as caught:
            check_overrides_apply(["trainer.max_epochs=2", wrong], ["ce", "focal"], tmp_path)
        assert "--loss" not in str(caught.value) and wrong.split("=")[0].split(".")[-1] in str(caught.value)


def test_losses_that_cannot_train_on_the_data_are_named_together():
    from lossbench.config import check_losses_serve
    from lossbench.errors import ConfigError
    from lossbench.task import Task

    with pytest.raises(ConfigError, match=r"--loss l1,cauchy cannot train on this classification data set"):
        check_losses_serve(["ce", "l1", "cauchy"], Task.CLASSIFICATION)
    check_losses_serve(["ce", "focal"], Task.CLASSIFICATION)


def test_a_refused_tune_leaves_no_plan_that_blocks_the_corrected_command(tmp_path, capsys):
    from lossbench.cli import main as cli_main

    args = ["tune", "--out", str(tmp_path / "t"), "--loss", "ce,focal", "--trials", "1", "--seeds", "1"]
    assert cli_main([*args, "trainer.max_epochs=1", "optim.optimizer.lr=0.1"]) == 2
    assert "the search tunes optim.optimizer.lr" in capsys.readouterr().err
    assert not (tmp_path / "t" / "plan.json").exists()


def test_a_loss_override_leaves_the_task_check_to_the_run(tmp_path, monkeypatch):
    """``loss.base=sigmoid`` makes class_balanced a multi-label loss; its default config does not say so."""
    from lossbench.tune import study as st

    checked = []
    monkeypatch.setattr(st, "check_overrides_apply", lambda *args: None)
    monkeypatch.setattr(st, "monitor_and_task", lambda overrides, scratch: (("val/map", "max"), "multilabel"))
    monkeypatch.setattr(st, "check_losses_serve", lambda losses, task: checked.append(losses))
    st.resolve_monitor(st.Plan(losses=["class_balanced"], trials=1, seeds=1, out=tmp_path))
    assert checked == [["class_balanced"]]
    plan = st.Plan(["class_balanced"], trials=1, seeds=1, out=tmp_path, overrides=["loss.base=sigmoid"])
    st.resolve_monitor(plan)
    assert checked == [["class_balanced"]], "not checked against the default config"


# --- a rerun in the same --out --------------------------------------------------------------------------
def test_the_best_configuration_is_chosen_from_the_budget_every_loss_has(tmp_path):
    """A stop can leave one study a trial ahead: its best comes from the first --trials trials only."""
    from lossbench.tune import study as st

    plan = st.Plan(losses=["focal"], trials=2, seeds=1, out=tmp_path)
    study = st.open_study(plan, "focal", "max")
    for lr, value in ((0.1, 0.80), (0.2, 0.90), (0.3, 0.99)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"optim.optimizer.lr": lr},
                distributions={"optim.optimizer.lr": optuna.distributions.FloatDistribution(0.01, 1.0)},
                value=value,
            )
        )
    assert st.best_params(plan, "focal", "max") == {"optim.optimizer.lr": 0.2}
    assert st.best_params(plan, "focal", "min") == {"optim.optimizer.lr": 0.1}


def test_a_finished_final_run_of_other_tuned_parameters_is_not_kept(tmp_path):
    import json

    from lossbench.tune.final import finished

    given = ["loss=ce", "seed=0"]
    (tmp_path / "metrics.json").write_text(
        json.dumps({"status": "ok", "loss": "ce", "overrides": given, "test": {"test/acc": 0.9}})
    )
    (tmp_path / "tuned.json").write_text(json.dumps({"optim.optimizer.lr": 0.001}))
    assert finished(tmp_path, {"optim.optimizer.lr": 0.001}, given)
    assert not finished(tmp_path, {"optim.optimizer.lr": 0.00249}, given), "trained with an earlier best"
    (tmp_path / "tuned.json").write_text('{"optim.optim')  # cut off by a kill
    assert not finished(tmp_path, {"optim.optimizer.lr": 0.001}, given)


def test_the_report_compares_the_planned_losses_and_seeds_only(tmp_path):
    """Runs an earlier command left under final/ (a dropped loss, more seeds) are not compared."""
    from lossbench.tune import study as st
    from lossbench.tune.final import final_dir, planned_runs
    from tests.fake_runs import fake_run

    rng = np.random.default_rng(0)
    for loss, seed in itertools.product(("ce", "focal", "gce"), range(3)):
        fake_run(
            final_dir(st.Plan(losses=[loss], trials=1, seeds=3, out=tmp_path), loss, seed),
            loss,
            seed,
            0.9,
            rng,
        )
    plan = st.Plan(losses=["ce", "focal"], trials=1, seeds=2, out=tmp_path)
    assert sorted((r.loss, r.seed) for r in planned_runs(plan)) == [
        ("ce", 0),
        ("ce", 1),
        ("focal", 0),
        ("focal", 1),
    ]


def test_a_second_command_on_the_same_out_is_refused_while_the_first_runs(tmp_path):
    from lossbench.errors import ConfigError
    from lossbench.output_root import command_lock

    in_use = r"--out .*out is in use by lossbench tune \(process \d+\)"
    with command_lock(tmp_path / "out", "lossbench tune"), pytest.raises(ConfigError, match=in_use):
        command_lock(tmp_path / "out", "lossbench advise").__enter__()
    with command_lock(tmp_path / "out", "lossbench advise"):  # the first one ended: free again
        pass
    assert (tmp_path / "out").is_dir(), "an --out that was there stays"
    with pytest.raises(ConfigError, match="refused"), command_lock(tmp_path / "new", "lossbench tune"):
        raise ConfigError("refused")
    assert not (tmp_path / "new").exists(), "a refused command leaves no --out it made"


def test_a_rerun_with_pruning_turned_on_is_another_search(tmp_path):
    from lossbench.tune import study as st
    from lossbench.tune.runner import check_plan

    check_plan(st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path))
    check_plan(st.Plan(losses=["ce"], trials=2, seeds=3, out=tmp_path))  # more replicates: the same search
    with pytest.raises(st.ConfigError, match="holds a search with other prune"):
        check_plan(st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path, prune=True))
    import json

    recorded = json.loads((tmp_path / "plan.json").read_text())
    del recorded["prune"], recorded["data"]  # a plan.json of an earlier version: nothing to compare
    (tmp_path / "plan.json").write_text(json.dumps(recorded))
    check_plan(st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path, prune=True))


def test_a_rerun_on_changed_data_behind_the_same_path_is_refused(tmp_path):
    """The same data.path with other rows kept every trial and final run of the old file."""
    from lossbench.tune import study as st
    from lossbench.tune.plan import data_fingerprint
    from lossbench.tune.runner import check_plan
    from tests.tables import wine_frame

    table = tmp_path / "my.csv"
    wine_frame().to_csv(table, index=False)
    overrides = ["data=table", f"data.path={table}", "data.target=label"]
    assert data_fingerprint(["data=wine"]) is None and data_fingerprint(["data=mnist"]) is None  # built in
    assert data_fingerprint(overrides) is not None
    plan = st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path / "out", overrides=overrides)
    check_plan(plan)
    check_plan(plan)  # the same file: the same search
    wine_frame().head(100).to_csv(table, index=False)
    with pytest.raises(st.ConfigError, match="holds a search on other data"):
        check_plan(plan)


def test_the_same_overrides_in_another_order_are_the_same_search(tmp_path):
    from lossbench.overrides import same_overrides
    from lossbench.tune import study as st
    from lossbench.tune.runner import check_plan

    check_plan(st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path, overrides=["data=wine", "logger=csv"]))
    check_plan(st.Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path, overrides=["logger=csv", "data=wine"]))
    assert not same_overrides(["seed=1", "seed=2"], ["seed=2", "seed=1"]), "a key set twice: the last wins"


def test_a_trials_wandb_run_is_named_by_its_number(tmp_path):
    """Every trial of a loss has seed 0: each named ``ce seed=0``, W&B's run table did not tell them apart."""
    from lossbench.tune.jobs import compose_job

    cfg = compose_job(["loss=ce"], tmp_path / "t", ("val/acc", "max"), "tune_x", name="ce trial 4")
    assert cfg.logger.wandb.name == "ce trial 4"
    csv_only = compose_job(["loss=ce", "logger=csv"], tmp_path / "c", ("val/acc", "max"), "tune_x", name="n")
    assert "wandb" not in csv_only.logger
