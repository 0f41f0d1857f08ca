"""Which way is better for a metric, by its name, for readers of run records (the report, ``advise``).

A run takes each metric's direction from the torchmetrics object that computes it
(:meth:`lossbench.module.LossBenchModule.metric_directions`, ``higher_is_better``); the report reads only
records and must not load torch, so it looks directions up by name here. The unit tests check this table
against torchmetrics' own ``higher_is_better`` for every metric of every task.
"""

from __future__ import annotations

import re

#: metric names (the part after ``val/`` or ``test/``) where lower is better
LOWER_IS_BETTER = (
    "nll",
    "ece",
    "loss",
    "mae",
    "rmse",
    "mse",
    "brier",
    "hamming",
    "crps",
    "crps_grid",
    "coverage_error",
    "nll_ts",
    "ece_ts",
)
#: metric names with no better direction (interval coverage and width: the target is the nominal level);
#: reports show them in figures, not in rankings
DESCRIPTIVE = re.compile(r"^((conformal_)?(coverage|width)_\d+|temperature)$")


def metric_name(metric: str) -> str:
    """A logged metric's name without its stage or a monitor's mark (``val/acc (best)``: ``acc``)."""
    return metric.removesuffix(" (best)").rsplit("/", 1)[-1]


def is_descriptive(metric: str) -> bool:
    """``test/coverage_90``, ``val/width_90 (best)``: metrics that neither higher nor lower makes better."""
    return bool(DESCRIPTIVE.match(metric_name(metric)))


def higher_is_better(metric: str, monitor_mode: str | None = None) -> bool:
    """``True`` for accuracy-like metrics; a monitored ``"<metric> (best)"`` follows the monitor's mode."""
    if metric.endswith(" (best)") and monitor_mode in ("max", "min"):
        return monitor_mode == "max"
    return metric_name(metric) not in LOWER_IS_BETTER


#: metrics whose every value lies in [0, 1] (a proportion, or an average of proportions)
UNIT_INTERVAL = (
    "acc",
    "bal_acc",
    "subset_acc",
    "f1",
    "f1_macro",
    "f1_micro",
    "map",
    "ece",
    "ece_ts",
    "hamming",
)
#: metrics that are never negative (errors and scores of squared or absolute size; not ``nll``, which a
#: continuous density's likelihood makes negative)
NON_NEGATIVE = ("mae", "rmse", "crps", "crps_grid", "coverage_error")
#: metrics that are never above 1 and have no lower bound (R² = 1 − SSE/SST: 1 for a perfect fit)
AT_MOST_ONE = ("r2",)


def value_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take (``test/acc``: ``(0, 1)``; unknown metrics: the whole line): an
    interval of its mean is cut to it, which never leaves out the true mean."""
    name = metric_name(metric)
    if name in UNIT_INTERVAL:
        return 0.0, 1.0
    if name in NON_NEGATIVE:
        return 0.0, float("inf")
    if name in AT_MOST_ONE:
        return float("-inf"), 1.0
    return float("-inf"), float("inf")
