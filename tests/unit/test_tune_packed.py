"""How ``lossbench tune`` hands a batch of asked trials to packed training and tells each study what came
back: the packed training itself is replaced here (its exactness is tested in tests/integration)."""

from __future__ import annotations

import optuna
import pytest

from lossbench.interrupt import RunInterrupted
from lossbench.tune import final as fin
from lossbench.tune import packed as tp
from lossbench.tune import study as st

MONITOR = ("val/acc", "max")
States = optuna.trial.TrialState


def summary(value: float) -> dict:
    return {"monitor": {"metric": "val/acc", "best": value}, "test": {}}


def batch(tmp_path, n: int, pack: int = 8) -> tuple[st.Plan, optuna.Study, list]:
    plan = st.Plan(losses=["focal"], trials=n, seeds=1, out=tmp_path, pack=pack)
    study = st.open_study(plan, "focal", "max")
    return plan, study, [("focal", t) for t in st.next_trials(plan, study, n)]


def test_asks_at_most_the_budget_left(tmp_path):
    plan, study, asked = batch(tmp_path, 3)
    assert len(asked) == 3
    assert st.next_trials(plan, study, 8) == [], "three running trials spend a budget of three"


def test_each_trial_is_told_its_outcome_and_a_failed_replica_counts_as_diverged(tmp_path, monkeypatch):
    plan, study, asked = batch(tmp_path, 3)
    outcomes = [(summary(0.9), None), (None, "FocalLoss returned nan at step 4"), (summary(0.7), None)]
    monkeypatch.setattr(tp, "train_packed_runs", lambda jobs, what: outcomes[: len(jobs)])
    tp.run_trials(plan, MONITOR, asked)
    trials = study.get_trials()
    assert [t.state for t in trials] == [States.COMPLETE, States.PRUNED, States.COMPLETE]
    assert [trials[0].value, trials[2].value] == [0.9, 0.7]
    assert trials[1].user_attrs["diverged"] == "FocalLoss returned nan at step 4"


def test_a_batch_that_cannot_be_packed_trains_one_by_one(tmp_path, monkeypatch):
    plan, study, asked = batch(tmp_path, 2)
    trained = []
    monkeypatch.setattr(tp, "packing_problem", lambda cfgs: "model resnet has no packed version")
    monkeypatch.setattr(st, "run_job", lambda cfg, callbacks: trained.append(cfg) or summary(0.5))
    tp.run_trials(plan, MONITOR, asked)
    assert len(trained) == 2 and [t.state for t in study.get_trials()] == [States.COMPLETE] * 2


def test_a_stop_during_the_packed_batch_queues_every_trial_of_it_again(tmp_path, monkeypatch):
    plan, study, asked = batch(tmp_path, 3)

    def stopped(jobs, what):
        raise RunInterrupted("SIGTERM", "stopped")

    monkeypatch.setattr(tp, "train_packed_runs", stopped)
    with pytest.raises(RunInterrupted):
        tp.run_trials(plan, MONITOR, asked)
    failed = study.get_trials(states=(States.FAIL,))
    queued = study.get_trials(states=(States.WAITING,))
    assert len(failed) == 3 and [q.user_attrs["retry_of"] for q in queued] == [0, 1, 2]
    assert [q.system_attrs["fixed_params"] for q in queued] == [f.params for f in failed]


def test_a_repeat_within_the_batch_is_told_failed_not_trained(tmp_path, monkeypatch):
    plan = st.Plan(losses=["focal"], trials=3, seeds=1, out=tmp_path)
    study = st.open_study(plan, "focal", "max")
    same = {"optim.optimizer.lr": 0.01, "optim.optimizer.weight_decay": 1e-4, "loss.gamma": 2.0}
    study.enqueue_trial(same)
    study.enqueue_trial(same)
    asked = [("focal", t) for t in st.next_trials(plan, study, 2)]
    monkeypatch.setattr(st, "run_job", lambda cfg, callbacks: summary(0.5))
    monkeypatch.setattr(tp, "train_packed_runs", lambda jobs, what: pytest.fail("one job is not packed"))
    tp.run_trials(plan, MONITOR, asked)
    first, repeat = study.get_trials()
    assert first.state == States.COMPLETE and repeat.state == States.FAIL
    assert repeat.user_attrs["repeat_of"] == first.number


def test_equal_settings_of_two_losses_are_no_repeat_and_each_trial_names_its_own_overrides(
    tmp_path, monkeypatch
):
    """advise asks one trial of each loss together: mse and log_cosh share only the common space, so their
    first trials (the defaults) have the same settings, and each must train; each packed run's record
    names the overrides its run alone would."""
    plan = st.Plan(losses=["mse", "log_cosh"], trials=1, seeds=1, out=tmp_path, overrides=["data=diabetes"])
    same = {"optim.optimizer.lr": 0.001, "optim.optimizer.weight_decay": 1e-4}
    asked = []
    for loss in plan.losses:
        study = st.open_study(plan, loss, "min")
        study.enqueue_trial(same)
        asked += [(loss, t) for t in st.next_trials(plan, study, 1)]
    packed = []
    monkeypatch.setattr(
        tp, "train_packed_runs", lambda jobs, what: packed.extend(jobs) or [(summary(0.5), None)] * 2
    )
    tp.run_trials(plan, ("val/rmse", "min"), asked)
    for loss in plan.losses:
        assert [t.state for t in st.open_study(plan, loss, "min").get_trials()] == [States.COMPLETE]
    for (cfg, overrides), loss in zip(packed, plan.losses, strict=True):
        assert f"loss={loss}" in overrides and "data=diabetes" in overrides and cfg.loss_name == loss


def test_batch_size_is_one_when_the_trials_would_not_be_packed(tmp_path, caplog):
    caplog.set_level("INFO", logger="lossbench")
    assert tp.batch_size(st.Plan(losses=["ce"], trials=3, seeds=1, out=tmp_path / "c"), "ce", MONITOR) == 8
    plan = st.Plan(losses=["focal"], trials=3, seeds=1, out=tmp_path, overrides=["model.channels_last=true"])
    assert tp.batch_size(plan, "focal", MONITOR) == 1
    assert tp.batch_size(plan, "focal", MONITOR) == 1
    assert caplog.text.count("its trials train one by one (model.compile and model.channels_last") == 1
    pruned = st.Plan(losses=["focal"], trials=3, seeds=1, out=tmp_path / "p", prune=True)
    assert tp.batch_size(pruned, "focal", MONITOR) == 1


def test_a_batch_whose_packed_training_cannot_start_trains_one_by_one(tmp_path, monkeypatch, caplog):
    import lossbench.packed.fit
    from lossbench.errors import ConfigError

    caplog.set_level("INFO", logger="lossbench")
    plan, study, asked = batch(tmp_path, 2)

    def refused(cfgs, hydra_configs=None):
        raise ConfigError("packed training needs an in-memory data set")

    monkeypatch.setattr(tp, "packing_problem", lambda cfgs: "")
    monkeypatch.setattr(lossbench.packed.fit, "build_packed", refused)
    monkeypatch.setattr(st, "run_job", lambda cfg, callbacks: summary(0.5))
    tp.run_trials(plan, MONITOR, asked)
    assert [t.state for t in study.get_trials()] == [States.COMPLETE] * 2
    assert "trials: they train one by one: packed training failed: ConfigError: packed training" in (
        caplog.text
    )


def test_a_trial_whose_run_refuses_its_config_fails_the_command_as_it_does_alone(
    tmp_path, monkeypatch, caplog
):
    import lossbench.packed.fit
    from lossbench.errors import ConfigError
    from lossbench.packed.replicas import ReplicaError

    caplog.set_level("INFO", logger="lossbench")
    plan, study, asked = batch(tmp_path, 2)
    refused = ConfigError("loss.gamma=-2 is out of range: give a value >= 0")

    def build(cfgs, hydra_configs=None):
        raise ReplicaError(1, refused)

    monkeypatch.setattr(tp, "packing_problem", lambda cfgs: "")
    monkeypatch.setattr(lossbench.packed.fit, "build_packed", build)
    with pytest.raises(ConfigError) as err:
        tp.run_trials(plan, MONITOR, asked)
    assert err.value is refused and "one by one" not in caplog.text
    assert [t.state for t in study.get_trials()] == [States.FAIL] * 2  # neither is queued again


def test_a_diverged_packed_final_run_fails_the_command_as_its_run_alone_does(tmp_path, monkeypatch):
    from lossbench.errors import NonFiniteLossError

    plan = st.Plan(losses=["ce", "focal"], trials=1, seeds=1, out=tmp_path)
    outcomes = [(summary(0.9), None), (None, "FocalLoss returned nan at step 3")]
    monkeypatch.setattr(fin, "train_packed_runs", lambda jobs, what, states, names: outcomes)
    monkeypatch.setattr(fin, "final_job", lambda plan, loss, seed, params, monitor: (loss, []))
    monkeypatch.setattr(fin, "starts", lambda jobs: dict.fromkeys(jobs))
    with pytest.raises(NonFiniteLossError, match="FocalLoss returned nan at step 3"):
        fin.packed_final_runs(plan, {"ce": {}, "focal": {}}, [0], MONITOR)


def test_final_runs_that_continue_are_packed_with_those_of_the_same_epoch_and_the_rest_alone(
    tmp_path, monkeypatch
):
    plan = st.Plan(losses=["ce", "focal", "sce", "gce"], trials=1, seeds=2, out=tmp_path, pack=8)
    at = {
        ("ce", 0): {"epoch": 3},
        ("focal", 0): {"epoch": 3},
        ("sce", 0): {"epoch": 5},
        ("gce", 0): "ordinary",
    }
    packed = []

    def train(jobs, what, states, names):
        packed.append((jobs, states, names))
        return [(summary(1.0), None)] * len(jobs)

    monkeypatch.setattr(fin, "train_packed_runs", train)
    monkeypatch.setattr(fin, "final_job", lambda plan, loss, seed, params, monitor: (f"{loss}{seed}", []))
    monkeypatch.setattr(fin, "starts", lambda jobs: {key: at.get(key) for key in jobs})
    done = fin.packed_final_runs(plan, dict.fromkeys(plan.losses, {}), [0, 1], MONITOR)
    assert [[cfg for cfg, _ in jobs] for jobs, _, _ in packed] == [
        ["ce1", "focal1", "sce1", "gce1"],
        ["ce0", "focal0"],
    ]
    assert packed[0][1] is None, "the runs that start from the beginning"
    assert packed[1][1] == [{"epoch": 3}] * 2 and packed[1][2] == ["final ce seed 0", "final focal seed 0"]
    assert ("sce", 0) not in done and ("gce", 0) not in done, (
        "alone at its epoch; an unpacked run's checkpoint"
    )
    assert len(done) == 6


#: the overrides of a final run
GIVEN = ["loss=focal", "seed=0"]


def test_a_final_run_continues_from_its_checkpoint_only_with_the_same_tuned_parameters(tmp_path, caplog):
    import torch

    run_dir = tmp_path / "final" / "focal" / "0"
    (run_dir / "checkpoints").mkdir(parents=True)
    params = {"optim.optimizer.lr": 0.003, "loss.gamma": 1.5}
    assert not fin.continues(run_dir, params, GIVEN), "no checkpoint"
    torch.save({"epoch": 3, "state_dict": {}}, run_dir / "checkpoints" / "last.ckpt")
    assert not fin.continues(run_dir, params, GIVEN), "no tuned.json: of which parameters is unknown"
    (run_dir / "tuned.json").write_text('{"optim.optimizer.lr": 0.003, "loss.gamma": 1.5}')
    assert fin.continues(run_dir, params, GIVEN)
    assert not fin.continues(run_dir, {**params, "loss.gamma": 2.0}, GIVEN), "other tuned parameters"
    (run_dir / "tuned.json").write_text('{"optim.optimizer.lr": 0.0')
    assert not fin.continues(run_dir, params, GIVEN), "a tuned.json cut off by a kill"
    (run_dir / "tuned.json").write_text('{"optim.optimizer.lr": 0.003, "loss.gamma": 1.5}')
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])
    assert not fin.continues(run_dir, params, GIVEN) and "last.ckpt" in caplog.text, "a cut-off checkpoint"


def test_an_earlier_final_runs_files_are_set_aside_before_another_starts_and_none_is_deleted(tmp_path):
    run_dir = tmp_path / "0"
    run_dir.mkdir()
    (run_dir / "tuned.json").write_text("{}")
    assert fin.set_aside_earlier(run_dir) == [] and (run_dir / "tuned.json").is_file(), "nothing ran there"
    for name in ("checkpoints", "csv"):
        (run_dir / name).mkdir()
        (run_dir / name / "a").write_text(name)
    (run_dir / "metrics.json").write_text("{}")
    moved = fin.set_aside_earlier(run_dir)
    assert sorted(p.name for p in moved) == [
        "checkpoints.earlier",
        "csv.earlier",
        "metrics.json.earlier",
        "tuned.json.earlier",
    ]
    (run_dir / "checkpoints").mkdir()
    assert [p.name for p in fin.set_aside_earlier(run_dir)] == ["checkpoints.earlier_1"]
    assert (run_dir / "checkpoints.earlier" / "a").read_text() == "checkpoints"


def test_a_failure_record_names_its_own_loss_and_overrides_when_others_were_composed_after_it(
    make_cfg, tmp_path
):
    """Runs trained packed are all composed before any trains: a failed one's record keeps its own loss
    (its ``loss_name``) and the overrides it is given, not those of the run composed last."""
    from lossbench.errors import NonFiniteLossError
    from lossbench.failures import record_failure
    from lossbench.record import read_record

    ce = make_cfg("loss=ce", "seed=0", output_dir=tmp_path / "ce")
    make_cfg("loss=focal", "seed=1", output_dir=tmp_path / "focal")  # the Hydra config is now focal's
    record_failure(ce, NonFiniteLossError("returned nan"), overrides=["loss=ce", "seed=0"])
    record = read_record(tmp_path / "ce")
    assert record.loss == "ce" and record.overrides == ["loss=ce", "seed=0"]
