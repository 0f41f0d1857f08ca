"""``lossbench advise``'s rounds once they are measured: losses dropped for lack of budget taken back,
and a grown plan's replicates kept."""

from __future__ import annotations

from lossbench.advise import budget as bd
from lossbench.advise.budget import Clock, Costs
from tests.unit.test_advise_budget import LOSSES, packed_rounds


def test_rounds_cheaper_than_planned_take_back_the_dropped_losses_first(monkeypatch, tmp_path):
    """The plan kept 2 of 3 losses at 10 s a trial; a packed round takes 2 s: the third is tuned too, to
    the same trials as the others, and the record is told."""
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, counts, told = [0.0], dict.fromkeys(LOSSES[:3], 0), []
    packed_rounds(monkeypatch, counts, t, 2.0)
    plan = Plan(losses=LOSSES[:2], trials=1, seeds=3, out=tmp_path)
    clock = Clock(150, Costs(10.0, 12.0), start=0.0, now=lambda: t[0])
    tuned = rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None, LOSSES[2:3], told.append)
    assert tuned.losses == LOSSES[:3] and told == [LOSSES[:3]]
    assert set(counts.values()) == {tuned.trials} and tuned.trials > 1, counts
    costs = clock.costs()
    assert clock.left() >= tuned.seeds * bd.round_s(costs.final_s, 3, 1) + bd.report_s(3, tuned.seeds)


def test_a_dropped_loss_is_not_taken_back_when_its_runs_do_not_fit(monkeypatch, tmp_path):
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, counts = [0.0], dict.fromkeys(LOSSES[:3], 0)
    packed_rounds(monkeypatch, counts, t, 30.0)  # as planned: 3 losses' trial and final runs do not fit
    plan = Plan(losses=LOSSES[:2], trials=1, seeds=3, out=tmp_path)
    clock = Clock(150, Costs(15.0, 18.0), start=0.0, now=lambda: t[0])
    tuned = rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None, LOSSES[2:3])
    assert tuned.losses == LOSSES[:2] and counts[LOSSES[2]] == 0


def test_trials_beyond_the_plan_keep_the_replicates_the_grown_plan_promised(monkeypatch, tmp_path):
    """Two packed rounds of 1 s grow the plan to more trials and replicates; later rounds take 3 s: the
    trials the plan grew by stop while the promised replicates still fit (not while 3 of them do)."""
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan

    t, counts = [0.0], dict.fromkeys(LOSSES[:3], 0)
    rounds_s = iter([1.0, 1.0] + [3.0] * 40)

    def trial_round(plan, monitor, losses, upto):
        t[0] += next(rounds_s)
        for loss in losses:
            counts[loss] = upto

    packed_rounds(monkeypatch, counts, t, 0.0)
    monkeypatch.setattr(rounds, "trial_round", trial_round)
    plan = Plan(losses=LOSSES[:3], trials=1, seeds=3, out=tmp_path)
    clock = Clock(100, Costs(10.0, 12.0), start=0.0, now=lambda: t[0])
    tuned = rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None)
    assert tuned.seeds > 3 and 1 < tuned.trials < 30
    costs = clock.costs()
    assert clock.left() >= tuned.seeds * bd.round_s(costs.final_s, 3, 1) + bd.report_s(3, tuned.seeds)


def test_a_loss_taken_back_after_the_planned_rounds_catches_up_to_the_others(monkeypatch, tmp_path):
    """Taken back once the kept losses have their trials, its catch-up rounds are rounds of it alone: the
    loop judged each as a round of every loss, stopped it part way, and every loss's best then came from
    the fewer trials of the loss taken back."""
    from lossbench.advise import rounds
    from lossbench.tune.study import Plan
    from tests.unit.test_advise_budget import studies_counting

    t, counts, calls = [0.0], dict.fromkeys(LOSSES[:3], 0), [0]
    studies_counting(monkeypatch, counts)

    def trial_round(plan, monitor, losses, upto):  # one after another; the first round is the slow one
        per = 20.0 if calls[0] == 0 else 10.0
        calls[0] += 1
        for loss in losses:
            t[0] += per
            counts[loss] = upto

    monkeypatch.setattr(rounds, "trial_round", trial_round)
    plan = Plan(losses=LOSSES[:2], trials=2, seeds=3, out=tmp_path)
    clock = Clock(235, Costs(20.0, 20.0), start=0.0, now=lambda: t[0])
    tuned = rounds.tuning_rounds(plan, ("val/acc", "max"), clock, None, LOSSES[2:3])
    assert tuned.losses == LOSSES[:3] and {counts[loss] for loss in tuned.losses} == {tuned.trials}, counts
    assert tuned.trials >= plan.trials
