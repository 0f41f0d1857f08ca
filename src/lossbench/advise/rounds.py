"""The equal-budget protocol of ``lossbench tune`` run in rounds against a clock: a round is one trial (or
one final run) of every loss, and a round starts only when it fits the time left, so a cut costs every
loss the same. With one worker a round's runs train as one packed model where they can be
(:mod:`lossbench.tune.packed`). Every loss's first trial is its default configuration. Finished trials and
final runs are kept: the same command continues where a stopped one ended."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from omegaconf import OmegaConf

from lossbench.advise.budget import MAX_SEEDS, MIN_SEEDS, Clock, grown_plan, readmitted
from lossbench.tune import space as sp
from lossbench.tune import study as st
from lossbench.tune.final import final_dir, final_overrides, final_run, final_runs, finished
from lossbench.tune.jobs import quiet

log = logging.getLogger("lossbench")


def default_params(plan: st.Plan, loss: str) -> dict[str, Any]:
    """The composed default of each searched key of ``loss`` that its search space can take."""
    from lossbench.config import compose_run

    cfg = compose_run([*plan.overrides, f"loss={loss}"])
    params = {}
    for p in sp.search_space(loss):
        value = OmegaConf.select(cfg, p.key)
        if p.choices is not None:
            ok = value in p.choices
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and p.low <= value <= p.high
        if ok:
            params[p.key] = int(value) if p.integer else value
    return params


def start_at_defaults(plan: st.Plan, loss: str, direction: str) -> None:
    """Queue the default configuration as the first trial of a study that has none."""
    study = st.open_study(plan, loss, direction)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(default_params(plan, loss), user_attrs={"default": True})


def trials_upto(plan: st.Plan, loss: str, monitor: tuple[str, str], upto: int) -> None:
    """Trials of ``loss`` until its study holds ``upto`` finished or pruned ones."""
    with quiet():
        st.tune_loss(replace(plan, trials=upto), loss, monitor)


def final(plan: st.Plan, loss: str, seed: int, params: dict[str, Any], monitor: tuple[str, str]) -> None:
    with quiet():
        final_run(plan, loss, seed, params, monitor)


@contextmanager
def executor(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` processes sharing the machine as ``lossbench tune``'s do; ``None`` for one worker."""
    if workers <= 1:
        yield None
        return
    from lossbench.tune.runner import worker_pool

    with worker_pool(workers) as pool:
        for future in [pool.submit(warm_up) for _ in range(workers)]:
            future.result()  # the workers' start-up is not counted as the first round's time
        yield pool


def warm_up() -> None:
    """Load what a run needs (torch, Lightning) in a worker."""
    import lossbench.run  # noqa: F401


def trial_round(plan: st.Plan, monitor: tuple[str, str], losses: list[str], upto: int) -> None:
    """One trial of each of ``losses`` (whose studies hold fewer than ``upto``), trained together, packed
    where they can be; a trial that repeats a configuration is asked again."""
    from lossbench.tune.packed import run_trials

    plan = replace(plan, trials=upto)
    with quiet():
        while True:
            asked = []
            for loss in losses:
                asked += [(loss, t) for t in st.next_trials(plan, st.open_study(plan, loss, monitor[1]))]
            if not asked:
                return
            for first in range(0, len(asked), plan.pack):  # at most --pack runs in one packed model
                run_trials(plan, monitor, asked[first : first + plan.pack])


def final_round(
    plan: st.Plan, monitor: tuple[str, str], losses: list[str], seed: int, params: dict[str, dict[str, Any]]
) -> None:
    """The final run of seed ``seed`` of each of ``losses``, packed where they can be."""
    with quiet():
        final_runs(plan, {loss: params[loss] for loss in losses}, [seed], monitor)


def run_round(pool: ProcessPoolExecutor | None, calls: list[tuple[Callable[..., None], tuple]]) -> None:
    if pool is None:
        for fn, args in calls:
            fn(*args)
        return
    for future in [pool.submit(fn, *args) for fn, args in calls]:
        future.result()


@dataclass(frozen=True)
class Tuned:
    """What the rounds of trials left: the trials every loss holds, the replicates the plan now promises,
    and the losses tuned (the plan's, then the dropped ones taken back)."""

    trials: int
    seeds: int
    losses: list[str]


def start_studies(plan: st.Plan, losses: list[str], monitor: tuple[str, str]) -> None:
    """Queue again the trials of ``losses`` a killed command left running, and each one's default first."""
    for loss in losses:
        st.recover_stale(plan, loss, st.open_study(plan, loss, monitor[1]))
        start_at_defaults(plan, loss, monitor[1])


def tuning_rounds(
    plan: st.Plan,
    monitor: tuple[str, str],
    clock: Clock,
    pool: ProcessPoolExecutor | None,
    dropped: Sequence[str] = (),
    admitted: Callable[[list[str]], None] | None = None,
) -> Tuned:
    """Rounds of trials up to ``plan.trials`` per loss while one more fits (with :data:`MIN_SEEDS` rounds
    of final runs after it; with all the replicates promised, for trials beyond ``plan.trials``), more
    when the measured rounds leave time for a larger plan (:func:`~lossbench.advise.budget.grown_plan`);
    the first round always runs. The ``dropped`` losses (left out of the plan for lack of budget) are taken
    back first, in their order, where the measured rounds leave time for their trials, final runs and the
    report (:func:`~lossbench.advise.budget.readmitted`); ``admitted`` is told the losses then tuned."""
    losses, waiting, workers = list(plan.losses), list(dropped), plan.workers
    start_studies(plan, losses, monitor)

    def done() -> list[int]:
        return [st.counted(st.open_study(plan, loss, monitor[1])) for loss in losses]

    def take_back(target: int, seeds: int) -> None:
        nonlocal losses, waiting, plan
        more = readmitted(clock, len(losses), len(waiting), workers, target, seeds, min(done()))
        if not more:
            return
        log.info(
            "budget: the rounds leave time for %s too: tuned as every other loss", ", ".join(waiting[:more])
        )
        start_studies(plan, waiting[:more], monitor)
        losses, waiting = losses + waiting[:more], waiting[more:]
        plan = replace(plan, losses=losses)
        if admitted is not None:
            admitted(losses)

    counts = done()
    target, seeds = plan.trials, plan.seeds
    finals_started = any(final_dir(plan, loss, 0).exists() for loss in losses)
    if min(counts) >= target and not finals_started:  # stopped while tuning: the plan may have grown
        take_back(target, seeds)
        counts = done()
        target, seeds = grown_plan(clock, len(losses), workers, target, seeds, min(counts))
        if target > min(counts):
            log.info("budget: %d trials per loss are done; up to %d with the time left", min(counts), target)
    while min(counts) < target:
        upto = min(counts) + 1
        kept = min(plan.seeds, MIN_SEEDS) if upto <= plan.trials else seeds  # a grown plan's promise
        behind = [loss for loss, n in zip(losses, counts, strict=True) if n < upto]  # a loss taken back
        if upto > 1 and not clock.trial_round_fits(len(losses), workers, kept, tuned=len(behind)):
            log.info(
                "budget: %d of %d trials per loss fit in the time left (%.0f s); tuning stops here for "
                "every loss",
                min(counts),
                target,
                clock.left(),
            )
            break
        started = clock.now()
        if pool is None:
            trial_round(plan, monitor, behind, upto)
        else:
            run_round(pool, [(trials_upto, (plan, loss, monitor, upto)) for loss in behind])
        clock.observe("trial", clock.now() - started, len(behind), workers)
        if waiting:
            take_back(target, seeds)
        counts = done()
        grown = grown_plan(clock, len(losses), workers, target, seeds, min(counts))
        if grown[0] > target:
            log.info(
                "budget: a round took %.0f s, less than planned: up to %d trials per loss, %d replicates",
                clock.now() - started,
                *grown,
            )
        target, seeds = grown
    return Tuned(min(counts), seeds, losses)


def final_rounds(
    plan: st.Plan, monitor: tuple[str, str], clock: Clock, pool: ProcessPoolExecutor | None
) -> int:
    """Rounds of final runs (seed 0, 1, ...) up to ``plan.seeds`` while one more fits, then on up to
    :data:`MAX_SEEDS` while time is left (more replicates settle more verdicts); the first round always
    runs. Returns the replicates every loss has."""
    losses, workers = plan.losses, plan.workers
    params = {loss: st.best_params(plan, loss, monitor[1]) for loss in losses}
    most = max(plan.seeds, MAX_SEEDS)
    for seed in range(most):
        missing = [
            loss
            for loss in losses
            if not finished(final_dir(plan, loss, seed), params[loss], final_overrides(plan, loss, seed))
        ]
        if not missing:
            continue
        if seed > 0 and not clock.final_round_fits(len(losses), workers, seed + 1):
            if seed < plan.seeds:
                log.info(
                    "budget: %d of %d replicates per loss fit in the time left (%.0f s); the report follows",
                    seed,
                    plan.seeds,
                    clock.left(),
                )
            return seed
        if seed == plan.seeds:
            log.info("budget: %.0f s left: more replicates of every loss, up to %d", clock.left(), most)
        started = clock.now()
        this = plan if seed < plan.seeds else replace(plan, seeds=most)
        if pool is None:
            final_round(this, monitor, missing, seed, params)
        else:
            run_round(pool, [(final, (this, loss, seed, params[loss], monitor)) for loss in missing])
        clock.observe("final", clock.now() - started, len(missing), workers)
    return most
