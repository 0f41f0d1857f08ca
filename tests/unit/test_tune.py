"""``lossbench tune``: equal budgets per loss, the test split unread while tuning, final runs, resume
after SIGKILL, pruning, parallel workers, and the expected-best-versus-budget estimator."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf

from lossbench.config import CONFIG_DIR, group_options
from lossbench.report.budget import expected_max, ranking_changes
from lossbench.tune.space import SPACES_DIR, search_space


# --- search spaces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
def test_every_search_space_names_real_keys(name):
    if name == "optim":
        keys = {p.key for p in search_space("ce")}
        assert {"optim.optimizer.lr", "optim.optimizer.weight_decay"} <= keys
        return
    assert name in group_options("loss"), f"tune/spaces/{name}.yaml is not a loss option"
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
