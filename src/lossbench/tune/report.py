"""The report of a tuning run: the comparison of the final runs and the expected best score per budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from optuna.trial import TrialState

from lossbench.report import budget, render
from lossbench.report.verdict import Settings
from lossbench.report.write import write_report
from lossbench.tune import study as st
from lossbench.tune.final import planned_runs


def trial_scores(plan: st.Plan, loss: str, direction: str) -> list[float]:
    """Each of the first ``plan.trials`` counted trials' validation score in trial order: a pruned trial's
    best reported value."""
    pick = max if direction == "max" else min
    scores = []
    for trial in st.first_counted(st.open_study(plan, loss, direction), plan.trials):
        if trial.state is TrialState.COMPLETE:
            scores.append(float(trial.value))
        elif trial.intermediate_values:
            scores.append(float(pick(trial.intermediate_values.values())))
    return [s for s in scores if math.isfinite(s)]


def write_tuning_report(
    plan: st.Plan, monitor: tuple[str, str], with_plots: bool = True, lead: list[str] | None = None
) -> Path:
    """The report over the final runs in ``plan.out/report``, with the tuning-budget section (``lead``:
    Markdown lines placed first)."""
    metric, direction = monitor
    higher = direction == "max"
    curves = {
        loss: budget.expected_max(scores, higher)
        for loss in plan.losses
        if (scores := trial_scores(plan, loss, direction))
    }
    out = plan.out / "report"
    out.mkdir(parents=True, exist_ok=True)
    png = budget.plot(curves, metric, out / "tuning_budget.png") if with_plots and curves else None
    md, parts, _ = budget.section(curves, metric, higher, png)
    if png is not None:
        parts.append(render.embed(png))
    runs = planned_runs(plan)
    baseline = plan.losses[0]
    source = f"{plan.out / 'final'} (tuned: {plan.trials} trials per loss on {metric})"
    write_report(runs, out, source, Settings(), baseline, with_plots, md, parts, lead)
    np.savez(out / "tuning_budget.npz", **{k: v for k, v in curves.items()})
    return out
