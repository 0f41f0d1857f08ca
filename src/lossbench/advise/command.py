"""``lossbench advise``: profile the data, shortlist losses with reasons, run the equal-budget protocol of
``lossbench tune`` within a wall-time budget, and recommend one loss (``recommendation.json``).

The budget is spent as follows (:mod:`.budget`): after the profile, a pilot of the baseline (its default
configuration for a few epochs, at most a tenth of the budget: :mod:`.pilot`) gives the time of a run;
the plan is the most trials and replicates per loss that the rest allows with ``--workers`` running at
once, the same for every loss (fewer losses when even 4 runs per loss do not fit, the baseline kept; taken
back when the measured rounds leave time for them); the runs go in rounds of one per loss while a round
fits the time left (:mod:`.rounds`). ``DIR/advise.json`` keeps the pilot and the plan, so running the same
command again continues where a stopped one ended, and a rerun with another ``--budget`` plans again from
the same pilot."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossbench.advise.budget import (
    PILOT_SHARE,
    BudgetPlan,
    Clock,
    fit_plan,
    parse_budget,
    refusal,
)
from lossbench.advise.pilot import Pilot, run_pilot
from lossbench.advise.profile import profile
from lossbench.advise.record import check_resume, read_plan, write_plan
from lossbench.advise.shortlist import Candidate, deciding_metric, shortlist
from lossbench.config import check_known_losses, check_losses_serve
from lossbench.directions import higher_is_better, is_descriptive
from lossbench.errors import ConfigError
from lossbench.overrides import override_key
from lossbench.task import Task, resolve_monitor, spec
from lossbench.tune.out_dir import ADVISE_RECORD, PILOT_DIR, check_advise_out

if TYPE_CHECKING:
    from lossbench.advise import recommend as rc

log = logging.getLogger("lossbench")


def load_data(overrides: list[str], scratch: Path) -> Any:
    """The data module of ``overrides``, built and set up for fitting as a training run would."""
    from lossbench.tune.jobs import data_module

    return data_module(overrides, scratch)


def check_losses(candidates: list[Candidate], task: Task) -> None:
    check_known_losses([c.loss for c in candidates])
    check_losses_serve([c.loss for c in candidates], task)


def check_metric(metric: str | None) -> None:
    """``--metric`` must be a ranked test score: not the loss value (its scale differs per loss) and not a
    coverage or width (no better direction)."""
    if metric is None:
        return
    name = metric.split("/", 1)[-1]
    if name == "loss" or is_descriptive(name):
        why = "its scale differs per loss" if name == "loss" else "it has no better direction"
        raise ConfigError(
            f"--metric {metric} cannot decide between losses ({why}): choose a task metric such as acc, "
            "bal_acc, f1, nll, map, mae, rmse or coverage_error"
        )


def default_out() -> Path:
    now = datetime.now()
    return Path("advise") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")


def measure_pilot(
    overrides: list[str], out: Path, monitor: tuple[str, str], start: float, budget_s: float
) -> Pilot:
    """The pilot, stopped so that it ends within :data:`PILOT_SHARE` of the budget and before 14% of it
    has passed since ``start`` (a refusal then comes within 15%), though it trains for 3% of the budget
    at least (a few batches are a poor estimate)."""
    now = time.monotonic()
    deadline = max(min(now + PILOT_SHARE * budget_s, start + 0.14 * budget_s) - 1.0, now + 0.03 * budget_s)
    return run_pilot(overrides, out / PILOT_DIR, monitor, deadline)


def check_metric_logged(given: str, name: str, task: Task, num_classes: int | None) -> None:
    """Refuse ``--metric`` (``name`` without its ``test/``) when the task's runs do not log it, before any
    training, naming the ones they do."""
    from lossbench.metrics import DistributionMetrics  # torchmetrics: loaded once advise runs

    if name == "loss":
        raise ConfigError(f"--metric {given}: each loss's value is on its own scale: it compares no losses")
    logged = [n for c in spec(task).metric_collections(num_classes) for n in c.keys(keep_base=False)]
    if name in logged or (task is Task.REGRESSION and name in DistributionMetrics.LOWER_IS_BETTER):
        return
    more = (
        f" (and a distributional loss's {', '.join(DistributionMetrics.LOWER_IS_BETTER)})"
        if task is Task.REGRESSION
        else ""
    )
    raise ConfigError(
        f"--metric {given}: {task.value} data logs no {name}: choose one of {', '.join(logged)}{more}"
    )


def make_plan(
    saved: dict[str, Any], names: list[str], pilot: Pilot, clock: Clock, workers: int, out: Path
) -> BudgetPlan:
    """The recorded plan when it was made for this budget, else the plan that fits the time left; a
    :class:`ConfigError` naming the budget that fits when none does."""
    made = saved.get("plan")
    if made and made.get("budget_s") == clock.budget_s:
        return BudgetPlan(made["losses"], made["trials"], made["seeds"], made.get("dropped", []))
    plan = fit_plan(names, pilot.costs(), clock.left(), workers)
    if plan is None:
        raise ConfigError(
            refusal(clock.budget_s, clock.spent(), len(names), pilot.costs(), workers, out, pilot.steady)
        )
    return plan


def conclude(
    plan: Any,
    monitor: tuple[str, str],
    task: Task,
    decide: str,
    candidates: list[Candidate],
    dropped: list[str],
) -> tuple[list[rc.LossVerdict], rc.LossVerdict, str, Path]:
    """The verdicts over ``plan.out/final``, the recommended loss, its sentence and the report's dir."""
    from lossbench.advise import recommend as rc
    from lossbench.report.stats import summarize
    from lossbench.report.verdict import Settings
    from lossbench.tune.final import planned_runs
    from lossbench.tune.report import write_tuning_report

    how, baseline = Settings(), spec(task).baseline
    rows = summarize(planned_runs(plan), baseline=baseline, how=how)
    verdicts = rc.loss_verdicts(rows, decide, how)
    if not any(v.verdict == "baseline" for v in verdicts):
        raise ConfigError(
            f"no final run of {baseline} has {decide}: see {plan.out / 'final'} and choose a logged metric "
            "with --metric"
        )
    chosen = rc.choose(verdicts, higher_is_better(decide))
    text = rc.sentence(verdicts, chosen, decide, rc.trade_off(rows, chosen.loss, baseline, decide))
    lead = [
        f"**Recommendation** ({decide}): {text}",
        "",
        *[f"- shortlisted `{c.loss}`: {c.reason}" for c in candidates],
        *[f"- not run within the budget: `{loss}`" for loss in dropped],
    ]
    return verdicts, chosen, text, write_tuning_report(plan, monitor, lead=lead)


def advise(
    overrides: list[str],
    budget: str = "30m",
    workers: int = 1,
    losses: list[str] | None = None,
    metric: str | None = None,
    out: Path | None = None,
    started: float | None = None,
    pack: int = 8,
) -> dict[str, Any]:
    """Run (or continue) the whole command; returns what ``recommendation.json`` holds. ``started``: the
    ``time.monotonic()`` the budget counts from (by default: now; the command line passes its own start);
    ``pack``: the most runs of a round trained as one packed model (1: one at a time)."""
    from lossbench.advise import recommend as rc
    from lossbench.advise.rounds import executor, final_rounds, tuning_rounds
    from lossbench.tune.jobs import check_overrides_apply, quiet
    from lossbench.tune.plan import data_fingerprint
    from lossbench.tune.study import Plan

    start = time.monotonic() if started is None else started
    budget_s = parse_budget(budget)
    check_metric(metric)
    out = Path(out or default_out()).resolve()
    check_advise_out(out)
    out.mkdir(parents=True, exist_ok=True)
    if not any(override_key(o) == "logger" for o in overrides):
        overrides = ["logger=csv", *overrides]  # the runs' curves for the report; logger=... to change
    dm = load_data(overrides, out / "scratch")
    prof = profile(dm)
    for line in prof.lines():
        log.info("profile: %s", line)
    task = Task(prof.task)
    candidates = shortlist(prof, losses)
    check_losses(candidates, task)
    check_overrides_apply(overrides, [c.loss for c in candidates], out / "scratch")
    for c in candidates:
        log.info("shortlist: %s — %s", c.loss, c.reason)
    decide = deciding_metric(prof, metric)
    name = decide.split("/", 1)[1]
    if metric is not None:
        check_metric_logged(metric, name, task, prof.num_classes)
    try:
        monitor = resolve_monitor(f"val/{name}", None)
    except ConfigError as err:  # the check names monitor.metric, which advise sets from --metric
        if metric is None:
            raise
        raise ConfigError(f"--metric {metric}: {err}") from None
    run_overrides = [*overrides, f"monitor.metric={monitor[0]}", f"monitor.mode={monitor[1]}"]
    record = out / ADVISE_RECORD
    names = [c.loss for c in candidates]
    wanted = {"overrides": overrides, "losses": names, "metric": decide, "data": data_fingerprint(overrides)}
    saved = read_plan(record)
    if saved:  # a rerun continues the recorded study
        check_resume(saved, wanted, record)
    pilot = Pilot(**saved["pilot"]) if "pilot" in saved else None
    if pilot is None or not pilot.steady:  # none yet, or one cut short by a smaller budget's share
        with quiet():
            pilot = measure_pilot(
                [*run_overrides, f"loss={names[0]}", "test=false"], out, monitor, start, budget_s
            )
        saved = {**wanted, "pilot": pilot.as_dict()}
        record.write_text(json.dumps(saved, indent=2))
    log.info("%s", pilot.line())
    clock = Clock(budget_s, pilot.costs(), start=start)
    chosen_plan = write_plan(record, saved, make_plan(saved, names, pilot, clock, workers, out), budget_s)
    log.info("plan: %s", chosen_plan.line(pilot.costs()))
    plan = Plan(
        losses=chosen_plan.losses,
        trials=chosen_plan.trials,
        seeds=chosen_plan.seeds,
        out=out,
        overrides=run_overrides,
        workers=workers,
        pack=pack,
    )

    def admitted(losses: list[str]) -> None:  # a rerun continues with the dropped losses taken back
        nonlocal chosen_plan
        dropped = [loss for loss in chosen_plan.dropped if loss not in losses]
        chosen_plan = write_plan(
            record, saved, replace(chosen_plan, losses=losses, dropped=dropped), budget_s
        )

    with quiet():
        with executor(workers) as pool:
            tuned = tuning_rounds(plan, monitor, clock, pool, chosen_plan.dropped, admitted)
            # every loss's best from the trials all of them have (a stop may leave one a trial ahead)
            plan = replace(plan, losses=tuned.losses, trials=max(tuned.trials, 1), seeds=tuned.seeds)
            seeds = final_rounds(plan, monitor, clock, pool)
        done = replace(plan, seeds=max(seeds, 1))
        dropped = chosen_plan.dropped
        verdicts, chosen, text, report = conclude(done, monitor, task, decide, candidates, dropped)
    result = {
        "loss": chosen.loss,
        "metric": decide,
        "recommendation": text,
        "baseline": spec(task).baseline,
        "profile": prof.as_dict(),
        "shortlist": [asdict(c) for c in candidates],
        "verdicts": rc.as_json(verdicts),
        "plan": {
            **asdict(chosen_plan),
            "trials_done": tuned.trials,
            "seeds_done": seeds,
            "pilot": pilot.as_dict(),
            "workers": workers,
            "budget_s": budget_s,
            "used_s": clock.spent(),
        },
        "report": str(report / "report.html"),
    }
    (out / "recommendation.json").write_text(json.dumps(result, indent=2))
    return result
