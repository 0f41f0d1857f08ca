"""``lossbench advise``: profile the data, shortlist losses with reasons, run the equal-budget protocol of
``lossbench tune`` within a wall-time budget, and recommend one loss (``recommendation.json``).

The budget is spent as follows: after the profile, one pilot run of the baseline (its default
configuration, no test) gives the time of a run; the number of runs per loss is what the rest of the
budget allows with ``--workers`` running at once, split into replicates (a third, 3 to 10) and tuning
trials (the rest, at most 30), the same for every loss. ``DIR/advise.json`` keeps that plan, so running
the same command again continues where a stopped one ended (as ``lossbench tune`` does)."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from lossbench.advise import recommend as rc
from lossbench.advise.profile import profile
from lossbench.advise.shortlist import Candidate, deciding_metric, shortlist
from lossbench.config import group_options, losses_for_task
from lossbench.directions import higher_is_better, is_descriptive
from lossbench.errors import ConfigError
from lossbench.task import Task, resolve_monitor, spec

log = logging.getLogger("lossbench")

#: fewest runs per loss a budget must allow (3 replicates and one trial)
MIN_RUNS = 4
MAX_SEEDS, MIN_SEEDS, MAX_TRIALS = 10, 3, 30
#: share of ``--workers`` that turns into throughput (measured: 2 workers give 1.65x on 2 cores)
WORKER_EFFICIENCY = 0.8
#: a tuning trial or final run takes this much longer than the pilot run (composing its config, the
#: study, the test pass and the predictions; measured 1.2-1.33x on digits and diabetes)
RUN_OVERHEAD = 1.35


def parse_budget(text: str) -> float:
    """``"30m"``, ``"1h30m"``, ``"900s"`` or ``"900"`` (seconds) -> seconds."""
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or not parts or not any(parts.groups()):
        raise ConfigError(f"--budget {text}: give a wall time such as 15m, 1h30m or 900s")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise ConfigError(f"--budget {text}: the budget must be positive")
    return seconds


def load_data(overrides: list[str], scratch: Path) -> Any:
    """The data module of ``overrides``, built and set up for fitting as a training run would."""
    from lossbench.tune.jobs import data_module

    return data_module(overrides, scratch)


def check_losses(candidates: list[Candidate], task: Task) -> None:
    known, served = set(group_options("loss")), set(losses_for_task(task))
    for c in candidates:
        if c.loss not in known:
            raise ConfigError(f"--loss {c.loss}: no such loss; choose from {', '.join(sorted(known))}")
        if c.loss not in served:
            raise ConfigError(
                f"--loss {c.loss} cannot train on this {task.value} data set: choose from "
                f"{', '.join(sorted(served))}"
            )


def plan_runs(
    seconds_per_run: float, budget_left: float, losses: int, workers: int, spent: float = 0.0
) -> tuple[int, int]:
    """(trials, seeds) per loss that fit ``budget_left``; a :class:`ConfigError` when fewer than
    :data:`MIN_RUNS` runs per loss fit (naming the budget that would do, ``spent`` seconds included)."""
    throughput = max(1.0, workers * WORKER_EFFICIENCY) if workers > 1 else 1.0
    seconds_per_run *= RUN_OVERHEAD
    runs = int(budget_left * throughput / (seconds_per_run * losses))
    if runs < MIN_RUNS:
        need = spent + MIN_RUNS * seconds_per_run * losses / throughput
        raise ConfigError(
            f"the budget leaves time for {max(runs, 0)} run(s) per loss of about {seconds_per_run:.0f} s "
            f"({losses} losses); {MIN_RUNS} are the least that give a verdict: raise --budget to at least "
            f"{math.ceil(need / 60) + 1}m, or shorten the shortlist with --loss"
        )
    seeds = min(MAX_SEEDS, max(MIN_SEEDS, runs // 3))
    return min(MAX_TRIALS, runs - seeds), seeds


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


def check_resume(saved: dict[str, Any], wanted: dict[str, Any], record: Path) -> None:
    """A rerun in the same ``--out`` must ask for the same study as ``advise.json`` records."""
    flags = {"overrides": "the overrides", "losses": "--loss", "metric": "--metric"}
    changed = [k for k in flags if saved.get(k) != wanted[k]]
    if changed:
        was = "; ".join(f"{flags[k]}: {saved.get(k)}" for k in changed)
        raise ConfigError(
            f"{record} records another study ({was}): rerun with those to continue it, or give another --out"
        )


def default_out() -> Path:
    now = datetime.now()
    return Path("advise") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")


def advise(
    overrides: list[str],
    budget: str = "30m",
    workers: int = 1,
    losses: list[str] | None = None,
    metric: str | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Run (or continue) the whole command; returns what ``recommendation.json`` holds."""
    from lossbench.report.collect import collect_local
    from lossbench.report.stats import summarize
    from lossbench.report.verdict import Settings
    from lossbench.tune.jobs import compose_job, run_job
    from lossbench.tune.report import write_tuning_report
    from lossbench.tune.runner import tune
    from lossbench.tune.study import Plan

    start = time.monotonic()
    budget_s = parse_budget(budget)
    check_metric(metric)
    out = Path(out or default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not any(o.split("=", 1)[0].lstrip("+~") == "logger" for o in overrides):
        overrides = ["logger=csv", *overrides]  # the runs' curves for the report; logger=... to change
    dm = load_data(overrides, out / "scratch")
    prof = profile(dm)
    for line in prof.lines():
        log.info("profile: %s", line)
    task = Task(prof.task)
    candidates = shortlist(prof, losses)
    check_losses(candidates, task)
    for c in candidates:
        log.info("shortlist: %s — %s", c.loss, c.reason)
    decide = deciding_metric(prof, metric)
    name = decide.split("/", 1)[1]
    monitor = resolve_monitor(f"val/{name}", None)
    run_overrides = [*overrides, f"monitor.metric={monitor[0]}", f"monitor.mode={monitor[1]}"]
    record = out / "advise.json"
    wanted = {"overrides": overrides, "losses": [c.loss for c in candidates], "metric": decide}
    if record.is_file():  # a rerun continues the recorded plan
        saved = json.loads(record.read_text())
        check_resume(saved, wanted, record)
        trials, seeds, pilot_s = saved["trials"], saved["seeds"], saved["pilot_s"]
        if saved.get("budget_s") != budget_s:
            log.info("plan: continuing the plan of %s, made for --budget %ss", record, saved.get("budget_s"))
    else:
        t0 = time.monotonic()
        pilot = [*run_overrides, f"loss={candidates[0].loss}", "test=false"]
        run_job(compose_job(pilot, out / "pilot", monitor, task_name=f"advise_{out.name}"), [])
        pilot_s = time.monotonic() - t0
        spent = time.monotonic() - start
        trials, seeds = plan_runs(pilot_s, budget_s - spent, len(candidates), workers, spent)
        saved = {**wanted, "trials": trials, "seeds": seeds, "pilot_s": pilot_s, "budget_s": budget_s}
        record.write_text(json.dumps(saved, indent=2))
    log.info("plan: %d trials and %d replicates per loss (a run took %.1f s)", trials, seeds, pilot_s)
    plan = Plan(
        losses=[c.loss for c in candidates],
        trials=trials,
        seeds=seeds,
        out=out,
        overrides=run_overrides,
        workers=workers,
    )
    tune(plan)
    how = Settings()
    rows = summarize(collect_local(out / "final"), baseline=spec(task).baseline, how=how)
    verdicts = rc.loss_verdicts(rows, decide, how)
    if not any(v.verdict == "baseline" for v in verdicts):
        raise ConfigError(
            f"no final run of {spec(task).baseline} has {decide}: see {out / 'final'} and choose a logged "
            "metric with --metric"
        )
    chosen = rc.choose(verdicts, higher_is_better(decide))
    text = rc.sentence(verdicts, chosen, decide)
    lead = [
        f"**Recommendation** ({decide}): {text}",
        "",
        *[f"- shortlisted `{c.loss}`: {c.reason}" for c in candidates],
    ]
    report = write_tuning_report(plan, monitor, lead=lead)
    result = {
        "loss": chosen.loss,
        "metric": decide,
        "recommendation": text,
        "baseline": spec(task).baseline,
        "profile": prof.as_dict(),
        "shortlist": [asdict(c) for c in candidates],
        "verdicts": rc.as_json(verdicts),
        "plan": {
            "trials": trials,
            "seeds": seeds,
            "pilot_s": pilot_s,
            "workers": workers,
            "budget_s": budget_s,
            "used_s": time.monotonic() - start,
        },
        "report": str(report / "report.html"),
    }
    (out / "recommendation.json").write_text(json.dumps(result, indent=2))
    return result
