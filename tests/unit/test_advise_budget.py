"""``lossbench advise``'s budget: the plan (shrunk to fewer losses, refused with a budget that a rerun
accepts), the clock that stops rounds which would overrun (the same cut for every loss), and the pilot's
extrapolation."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossbench.advise import budget as bd
from lossbench.advise.budget import Clock, Costs, fit_plan, parse_budget, refusal
from lossbench.advise.command import make_plan
from lossbench.advise.pilot import epoch_estimate, extrapolate
from lossbench.errors import ConfigError


# --- budget -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("90s", 90), ("120", 120)])
def test_budgets_read_as_wall_time(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "0m", "10 minutes"])
def test_a_bad_budget_names_the_format(text):
    with pytest.raises(ConfigError, match="--budget"):
        parse_budget(text)


LOSSES = ["ce", "logit_adjusted", "balanced_softmax", "class_balanced", "ldam"]


def test_the_full_plan_splits_runs_into_replicates_and_trials_alike_for_every_loss():
    plan = fit_plan(LOSSES, Costs(10.0, 12.0), 1200, 1)
    assert plan.losses == LOSSES and not plan.dropped
    assert plan.seeds == (plan.trials + plan.seeds) // 3, "a third replicates"
    assert bd.plan_s(plan.trials, plan.seeds, 5, Costs(10.0, 12.0), 1) + bd.report_s(5, plan.seeds) <= 1200
    capped = fit_plan(["ce", "focal"], Costs(1.0, 1.0), 3600, 1)
    assert (capped.trials, capped.seeds) == (30, 10)
    two = fit_plan(LOSSES, Costs(10.0, 12.0), 1200, 2)
    assert two.trials + two.seeds > plan.trials + plan.seeds, "two workers fit more runs"


def test_a_budget_too_small_for_every_loss_drops_the_last_ones_and_keeps_the_baseline():
    costs = Costs(15.0, 16.0)
    plan = fit_plan(LOSSES, costs, 200, 1)  # 4 runs of ~15 s per loss: 3 losses and the report fit
    assert plan.losses == LOSSES[:3] and plan.dropped == LOSSES[3:]
    assert (plan.trials, plan.seeds) == (1, 3)
    line = plan.line(costs)
    assert "\n" not in line and "fits 3 of 5 losses" in line and "not class_balanced, ldam" in line
    assert fit_plan(LOSSES, costs, 150, 1).losses == ["ce", "logit_adjusted"], "the baseline and one loss"


def test_when_no_plan_fits_the_refusal_names_a_budget_that_a_rerun_accepts():
    costs, spent, pilot_s = Costs(30.0, 33.0), 40.0, 6.0
    assert fit_plan(LOSSES, costs, 240 - spent, 1) is None
    text = refusal(240, spent, len(LOSSES), costs, 1)
    assert "same --out" in text and "--budget 4m leaves 200 s" in text
    minutes = int(text.split("rerun with --budget ")[1].split("m")[0])
    for rerun_spent in (spent - pilot_s, spent):  # the same --out keeps the pilot; another --out runs it
        assert fit_plan(LOSSES, costs, 60 * minutes - rerun_spent, 1) is not None
        assert make_plan(
            {}, LOSSES, pilot_of(costs), clock_at(60 * minutes, rerun_spent, costs), 1, Path("adv")
        )
    with pytest.raises(
        ConfigError, match=f"rerun with --budget {minutes}m and the same --out adv \\(the pilot"
    ):
        make_plan({}, LOSSES, pilot_of(costs), clock_at(240, spent, costs), 1, Path("adv"))


def clock_at(budget_s: float, spent_s: float, costs: Costs) -> Clock:
    return Clock(budget_s, costs, start=-spent_s, now=lambda: 0.0)


def pilot_of(costs: Costs):
    from lossbench.advise.pilot import MARGIN, TRIAL_EXTRA_S, Pilot

    run_s, epoch_s = (costs.trial_s - TRIAL_EXTRA_S) / MARGIN, (costs.final_s - costs.trial_s) / MARGIN
    return Pilot(wall_s=1.0, epoch_s=epoch_s, epochs_done=3, max_epochs=20, run_s=run_s)


def test_a_rerun_keeps_the_plan_made_for_its_budget_and_plans_again_for_another():
    costs = Costs(10.0, 12.0)
    saved = {"plan": {"losses": ["ce", "focal"], "trials": 2, "seeds": 3, "dropped": [], "budget_s": 600}}
    kept = make_plan(saved, ["ce", "focal"], pilot_of(costs), clock_at(600, 500, costs), 1, Path("adv"))
    assert (kept.trials, kept.seeds) == (2, 3), "continued, though less time is left now"
    again = make_plan(saved, ["ce", "focal"], pilot_of(costs), clock_at(3600, 0, costs), 1, Path("adv"))
    assert again.trials > 2


def test_the_clock_stops_rounds_that_would_overrun_and_learns_the_runs_real_length():
    t = [0.0]
    clock = Clock(300, Costs(10.0, 12.0), start=0.0, now=lambda: t[0])
    assert clock.trial_round_fits(3, 1, seeds=3)  # 30 s + 3 x 36 s + the report <= 300
    t[0] = 160.0
    assert not clock.trial_round_fits(3, 1, seeds=3) and clock.final_round_fits(3, 1, seeds=1)
    clock.observe("final", 90.0, 3, 1)  # final runs take 30 s, not 12
    assert clock.costs() == Costs(10.0, 30.0)
    t[0] = 300 - 90.0 - bd.report_s(3, 2) + 1.0
    assert not clock.final_round_fits(3, 1, seeds=2), "a round of 90 s and the report overrun by 1 s"
    t[0] -= 2.0
    assert clock.final_round_fits(3, 1, seeds=2)


def test_measured_trials_rescale_the_final_runs_estimate():
    clock = Clock(300, Costs(10.0, 12.0), start=0.0, now=lambda: 0.0)
    clock.observe("trial", 60.0, 3, 1)  # trials take 20 s, not 10: final runs are expected at 24 s
    assert clock.costs() == Costs(20.0, 24.0)
    clock.observe("trial", 80.0, 2, 2)  # two workers at once: a round of 2 took 80 s, i.e. 64 s a run
    assert clock.costs().trial_s == pytest.approx((20.0 + 64.0) / 2)


def studies_counting(monkeypatch, counts: dict[str, int]) -> None:
    """The advise rounds' studies replaced by ``counts``: each loss's trials done, as the rounds set them."""
    from lossbench.advise import rounds

    monkeypatch.setattr(rounds.st, "open_study", lambda plan, loss, direction: loss)
    monkeypatch.setattr(rounds.st, "counted", lambda loss: counts[loss])
    monkeypatch.setattr(rounds.st, "recover_stale", lambda plan, loss, study: 0)
    monkeypatch.setattr(rounds, "start_at_defaults", lambda *a: None)


def packed_rounds(monkeypatch, counts: dict[str, int], t: list[float], round_s: float) -> None:
    """:func:`studies_counting`, with each round of trials one packed model taking ``round_s`` of ``t``."""
    from lossbench.advise import rounds

    studies_counting(monkeypatch, counts)

    def trial_round(plan, monitor, losses, upto):
        t[0] += round_s
        for loss in losses:
            counts[loss] = upto

    monkeypatch.setattr(rounds, "trial_round", trial_round)


def test_rounds_cut_every_loss_alike(monkeypatch, tmp_path):
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, counts = [0.0], dict.fromkeys(LOSSES[:3], 0)
    studies_counting(monkeypatch, counts)

    def trial_round(plan, monitor, losses, upto):  # one run of each loss, one after another
        for loss in losses:
            t[0] += 10.0
            counts[loss] = upto

    monkeypatch.setattr(rounds, "trial_round", trial_round)
    plan = Plan(losses=LOSSES[:3], trials=30, seeds=3, out=tmp_path)
    clock = Clock(400, Costs(10.0, 12.0), start=0.0, now=lambda: t[0])
    done = rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None).trials
    assert set(counts.values()) == {done} and 1 <= done < 30, counts
    assert clock.left() >= 3 * 3 * 12.0, "the final runs' time is kept"


def test_final_rounds_use_the_time_left_for_more_replicates_of_every_loss(monkeypatch, tmp_path):

    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, done = [0.0], set()
    monkeypatch.setattr(rounds.st, "best_params", lambda plan, loss, direction: {})
    monkeypatch.setattr(rounds, "finished", lambda path, params, given: (path.parent.name, path.name) in done)

    def final_round(plan, monitor, losses, seed, params):
        for loss in losses:
            t[0] += 12.0
            done.add((loss, str(seed)))

    monkeypatch.setattr(rounds, "final_round", final_round)
    plan = Plan(losses=LOSSES[:2], trials=1, seeds=3, out=tmp_path)
    clock = Clock(150, Costs(10.0, 12.0), start=0.0, now=lambda: t[0])
    seeds = rounds.final_rounds(plan, ("val/acc", "max"), clock, None)
    assert seeds > 3 and done == {(loss, str(s)) for loss in LOSSES[:2] for s in range(seeds)}
    assert clock.left() >= bd.report_s(2, seeds), "the report's time is kept"


# --- pilot --------------------------------------------------------------------------------------------
def test_the_pilot_extrapolates_its_steady_epochs_to_a_whole_run():
    epoch_s, done = epoch_estimate([2.0, 2.5, 3.1], 0.0, 0, 100)  # epoch 0 holds the start-up
    assert epoch_s == pytest.approx(0.55) and done == 3
    pilot = extrapolate(4.0, epoch_s, done, 20)
    assert pilot.run_s == pytest.approx(4.0 + 17 * 0.55)
    assert pilot.costs().final_s > pilot.costs().trial_s > pilot.run_s
    epoch_s, done = epoch_estimate([], 5.0, 25, 100.0)  # stopped at its deadline inside the first epoch
    assert done == 0.25 and epoch_s == pytest.approx(20.0 * 1.25)
    assert extrapolate(8.0, epoch_s, done, 20).run_s == pytest.approx(8.0 + 19.75 * 25.0)


def test_the_pilot_stopped_inside_its_first_epoch_is_timed_by_its_batches():
    from types import SimpleNamespace

    from lossbench.advise.epoch_clock import PilotClock

    t = [0.0]
    clock = PilotClock(epochs=3, deadline=5.0, now=lambda: t[0])
    trainer = SimpleNamespace(num_training_batches=100, should_stop=False)
    clock.on_train_start(trainer, None)
    while not trainer.should_stop:
        t[0] += 0.2
        clock.on_train_batch_end(trainer, None, None, None, 0)
    clock.on_train_epoch_end(trainer, None)  # Lightning ends the cut epoch: not a whole one
    assert clock.estimate() == pytest.approx((4.8 / 0.24 * 1.25, 0.24)), "the first batch's start-up left out"


def test_a_pilot_past_its_deadline_at_its_first_batch_times_a_second_one():
    """The first batch holds the start-up (4 s here): one batch alone would time an epoch at 100 x 4 s."""
    from types import SimpleNamespace

    from lossbench.advise.epoch_clock import PilotClock

    t = [0.0]
    clock = PilotClock(epochs=3, deadline=1.0, now=lambda: t[0])
    trainer = SimpleNamespace(num_training_batches=100, should_stop=False)
    clock.on_train_start(trainer, None)
    for step in (4.0, 0.05):
        assert not trainer.should_stop
        t[0] += step
        clock.on_train_batch_end(trainer, None, None, None, 0)
    assert trainer.should_stop and clock.estimate()[0] == pytest.approx(0.05 * 100 * 1.25)


def test_a_trial_round_packs_at_most_pack_runs_per_model(monkeypatch, tmp_path):
    from lossbench.advise import rounds
    from lossbench.tune import packed
    from lossbench.tune.study import Plan

    left: dict[str, list[str]] = {}  # per loss, the trials its study still gives (then its budget is spent)
    monkeypatch.setattr(rounds.st, "open_study", lambda plan, loss, direction: loss)
    monkeypatch.setattr(rounds.st, "next_trials", lambda plan, study: left[study][:1] and [left[study].pop()])
    chunks: list[list] = []
    monkeypatch.setattr(packed, "run_trials", lambda plan, monitor, trials: chunks.append(trials))
    losses = LOSSES[:3]
    for pack, sizes in ((2, [2, 1]), (1, [1, 1, 1]), (8, [3])):
        left.update({loss: [f"{loss} trial"] for loss in losses})
        chunks.clear()
        plan = Plan(losses, trials=5, seeds=1, out=tmp_path, pack=pack)
        rounds.trial_round(plan, ("val/acc", "max"), losses, upto=1)
        assert [len(chunk) for chunk in chunks] == sizes, pack


def test_rounds_faster_than_the_pilot_said_grow_the_trials_of_every_loss(monkeypatch, tmp_path):
    """A packed round of 3 losses took 2 s where the plan counted 3 x 10 s: the rounds go on to more trials
    for every loss, keeping the planned replicates' and the report's time."""
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, counts = [0.0], dict.fromkeys(LOSSES[:3], 0)
    packed_rounds(monkeypatch, counts, t, 2.0)
    plan = Plan(losses=LOSSES[:3], trials=1, seeds=3, out=tmp_path)
    clock = Clock(150, Costs(10.0, 12.0), start=0.0, now=lambda: t[0])
    done = rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None).trials
    assert set(counts.values()) == {done} and done > 1, counts
    trials, seeds = bd.split_runs(done + 3)
    costs = clock.costs()
    assert clock.left() >= 3 * bd.round_s(costs.final_s, 3, 1) + bd.report_s(3, 3), "replicates' time kept"
    assert bd.grown_plan(clock, 3, 1, 1, 3, done) >= (done, 3)


def test_a_pilot_of_one_epoch_and_part_of_the_next_is_timed_by_the_later_batches():
    """The first epoch holds the start-up: 0.55 s for an epoch whose batches take 0.08 s."""
    epoch_s, done = epoch_estimate([0.55], 0.028, 35, 100.0)
    assert done == pytest.approx(1.35) and epoch_s == pytest.approx(0.08 * 1.25)
    assert epoch_estimate([0.55], 0.0, 0, 100.0) == (0.55, 1.0), "one epoch alone: that epoch"


def test_a_pilot_cut_inside_its_second_epoch_is_measured_again_by_a_rerun():
    from lossbench.advise.pilot import Pilot

    assert not Pilot(2.0, 0.1, 1.35, 20, 4.0).steady and Pilot(2.0, 0.1, 2.0, 20, 4.0).steady
    assert Pilot(2.0, 0.1, 1.0, 1, 2.0).steady, "a run of one epoch: that epoch is all there is"
    assert "its pilot times more epochs" in bd.refusal(60, 10, 3, Costs(10, 12), 1, "o", pilot_kept=False)


def test_a_continued_advise_tunes_on_past_its_recorded_plan_when_time_is_left(monkeypatch, tmp_path):
    """The plan recorded before a stop says 2 trials, and 4 are done (its rounds had grown it): the same
    command again, with a fresh budget, grows it again rather than spend it all on replicates."""
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, counts = [0.0], dict.fromkeys(LOSSES[:3], 4)
    packed_rounds(monkeypatch, counts, t, 3.0)
    plan = Plan(losses=LOSSES[:3], trials=2, seeds=3, out=tmp_path)
    clock = Clock(200, Costs(1.0, 1.2), start=0.0, now=lambda: t[0])
    assert rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None).trials > 4
    counts.update(dict.fromkeys(LOSSES[:3], 2))  # stopped in its final runs: it goes on with them
    (tmp_path / "final" / LOSSES[0] / "0").mkdir(parents=True)  # its first final run's dir
    assert rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None).trials == 2
