"""Per variant × metric statistics over seeds, ranks, and a paired test against a baseline loss."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from lossbench.directions import higher_is_better
from lossbench.report.collect import RunRecord


#: metric name parts for which lower is better; anything else is higher-is-better
@dataclass
class Row:
    group: str
    variant: str
    metric: str
    higher_is_better: bool
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    rank: int = 0
    best: bool = False
    baseline: str = ""
    n_pairs: int = 0
    diff_vs_baseline: float = math.nan
    p_value: float = math.nan
    seeds: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample std and the t-distribution confidence interval of the mean (NaN bounds for n < 2)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))
    return mean, std, mean - half, mean + half


def paired_test(a: dict[Any, float], b: dict[Any, float]) -> tuple[int, float, float]:
    """Paired t-test of ``a`` vs ``b`` over their common seeds: (pairs, mean difference a − b, p-value)."""
    seeds = sorted(set(a) & set(b), key=str)
    if len(seeds) < 2:
        return len(seeds), math.nan, math.nan
    x = np.array([a[s] for s in seeds])
    y = np.array([b[s] for s in seeds])
    diff = x - y
    if np.allclose(diff, diff[0]):  # zero variance of the differences: t is undefined (or infinite)
        return len(seeds), float(diff.mean()), 1.0 if np.isclose(diff[0], 0.0) else 0.0
    return len(seeds), float(diff.mean()), float(stats.ttest_rel(x, y).pvalue)


def choose_baseline(variants: list[str], requested: str | None) -> str:
    if requested and requested in variants:
        return requested
    for default in (requested, "ce", "mse"):
        if default in variants:
            return default
    return sorted(variants)[0]


def summarize(runs: list[RunRecord], baseline: str | None = "ce") -> list[Row]:
    """One :class:`Row` per (group, variant, metric) over the ok runs; ranks and tests within a group."""
    by_cell: dict[tuple[str, str, str], dict[Any, float]] = defaultdict(dict)
    modes: dict[tuple[str, str], str | None] = {}
    for r in runs:
        if not r.ok:
            continue
        for metric, value in r.metrics.items():
            by_cell[(r.group, r.variant, metric)][r.replicate] = value
            modes[(r.group, metric)] = r.monitor.get("mode")
    rows: list[Row] = []
    groups = sorted({g for g, _, _ in by_cell})
    for group in groups:
        variants = sorted({v for g, v, _ in by_cell if g == group})
        base = choose_baseline(variants, baseline)
        metrics = sorted({m for g, _, m in by_cell if g == group})
        for metric in metrics:
            hib = higher_is_better(metric, modes.get((group, metric)))
            cell_rows = []
            for variant in variants:
                values = by_cell.get((group, variant, metric))
                if not values:
                    continue
                mean, std, lo, hi = mean_ci(list(values.values()))
                row = Row(group, variant, metric, hib, len(values), mean, std, lo, hi, baseline=base)
                row.seeds = ",".join(str(s) for s in sorted(values, key=str))
                if variant != base and (group, base, metric) in by_cell:
                    row.n_pairs, row.diff_vs_baseline, row.p_value = paired_test(
                        values, by_cell[(group, base, metric)]
                    )
                cell_rows.append(row)
            ranks = stats.rankdata([-r.mean if hib else r.mean for r in cell_rows], method="min")
            for row, rank in zip(cell_rows, ranks, strict=True):
                row.rank, row.best = int(rank), int(rank) == 1
            rows.extend(cell_rows)
    return rows
