"""Per setting × variant × metric: estimates over replicates, ranks, and verdicts against a baseline.

A *setting* (``group``) is the data set with the experimental conditions that vary across the runs; a
*variant* is a loss with its varying ``loss.*`` overrides; its runs are the *replicates*, paired across
variants by seed (and data_seed). Each row carries:

* ``mean`` with its t-interval and ``iqm`` (interquartile mean) with its trimmed-mean interval, both 95%
  (``ci_*``, ``iqm_*``, :mod:`lossbench.report.intervals`), the sample ``std``;
* ``rank`` by mean within the setting and metric (1 = best, ties share the lowest rank) and ``best``:
  the top-ranked variant and every variant not shown worse than it (paired tests Holm-adjusted over every
  pair of variants, :func:`best_group`; an untestable comparison shows nothing);
* versus the baseline: the mean paired difference with a 95% t-interval (under the Wilcoxon test, the
  Hodges–Lehmann estimate with its signed-rank interval), P(improvement) over every pair of
  runs of different seeds with its 95% score interval and the paired win share
  (:mod:`lossbench.report.improvement`), the raw
  and Holm-adjusted p-values, and the ``verdict`` of :mod:`lossbench.report.verdict`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from lossbench.directions import higher_is_better, is_descriptive, value_range
from lossbench.report import verdict as vd
from lossbench.report.collect import ReportRun, replicate_parts
from lossbench.report.improvement import paired_win_share, prob_improvement
from lossbench.report.intervals import estimates, walsh_interval
from lossbench.task import SPECS


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
    iqm: float = math.nan
    iqm_low: float = math.nan
    iqm_high: float = math.nan
    rank: int = 0
    best: bool = False
    baseline: str = ""
    n_pairs: int = 0
    diff_vs_baseline: float = math.nan
    diff_low: float = math.nan
    diff_high: float = math.nan
    diff_sd: float = math.nan
    test: str = ""
    p_value: float = math.nan
    p_holm: float = math.nan
    prob_improvement: float = math.nan
    prob_improvement_low: float = math.nan
    prob_improvement_high: float = math.nan
    paired_win_share: float = math.nan
    rope: float = math.nan
    verdict: str = ""
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


#: the relative precision of a logged metric: two float32 spacings (metrics are computed in float32)
METRIC_RESOLUTION = 2.0**-22


def paired(a: dict[Any, float], b: dict[Any, float]) -> np.ndarray:
    """Differences ``a − b`` over the replicates both have, in a stable order.

    Differences that vary by less than the metrics' own precision (:data:`METRIC_RESOLUTION` of their
    largest value) are one difference: one test sample gained on every seed is an identical gain, which a
    t-test on the float32 rounding left in it (a spread of ~1e-8) would call significant at p ~ 1e-21.
    """
    common = sorted(set(a) & set(b), key=str)
    gains = np.array([a[s] - b[s] for s in common], dtype=float)
    scale = max((max(abs(a[s]), abs(b[s])) for s in common), default=0.0)
    if len(gains) and np.ptp(gains) <= METRIC_RESOLUTION * scale:
        gains[:] = gains.mean()
    return gains


def not_independent(a: Any, b: Any, apart: bool) -> bool:
    """Whether runs of the replicates ``a`` and ``b`` (:attr:`ReportRun.replicate` keys) are left out of
    P(improvement)'s every-run-against-every-run count: runs of one seed (paired, not independent), and,
    where the two variants ran on different sets of data splits (``apart``), runs of different splits
    (scored on test sets the other variant's runs did not all face). Where both ran on the same splits, a
    replicate's split is part of its draw (``data_seed=${seed}``), and runs of other splits count."""
    (seed_a, split_a), (seed_b, split_b) = replicate_parts(a), replicate_parts(b)
    return seed_a == seed_b or (apart and split_a != split_b)


def setting_label(group: str) -> str:
    """A setting's name without a ``data=<name>`` condition that repeats its first word (the data set):
    ``"wine data=wine lr=0.1"`` reads ``"wine lr=0.1"``."""
    first, *rest = group.split(" ")
    return " ".join([first, *(word for word in rest if word != f"data={first}")])


def stands_out(rows: list[Row]) -> set[str]:
    """The variants of one setting and metric worth highlighting: the best group (the top and those
    indistinguishable from it) when it leaves some variant out; none when every variant is in it."""
    best = {r.variant for r in rows if r.best}
    return best if len(best) < len(rows) else set()


def choose_baseline(variants: list[str], requested: str | None) -> str:
    """``requested`` when compared, else the first task baseline among the variants (``ce``, ``bce``,
    ``mse``: :attr:`lossbench.task.TaskSpec.baseline`), else the first variant by name."""
    if requested and requested in variants:
        return requested
    for default in (spec.baseline for spec in SPECS.values()):
        if default in variants:
            return default
    return sorted(variants)[0]


def best_group(
    cells: dict[str, dict[Any, float]], rank: dict[str, int], sign: float, metric: str, how: vd.Settings
) -> set[str]:
    """The top-ranked variant and every variant not shown to be worse than it: paired tests of every pair
    of variants, Holm-adjusted over all pairs. The top is chosen on the same runs, so its comparisons lean
    its way; within the family of every pair, whichever is top, a variant equal to it is left out with
    probability at most alpha (tested against top-only Holm, which left one out in 8–12% of null settings
    of 5–8 variants)."""
    order = list(cells)
    top = min(order, key=lambda v: (rank[v], v))
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]
    gains = [sign * paired(cells[a], cells[b]) for a, b in pairs]
    _, _, p_holm, _ = vd.family_verdicts(gains, how.rope_for(metric), how.alpha, how.test)
    best = {top}
    for (a, b), g, p in zip(pairs, gains, p_holm, strict=True):
        if top not in (a, b):
            continue
        other, vs_top = (a, g) if b == top else (b, -g)
        worse = p < how.alpha and vd.location(vs_top, how.test) < 0
        # tied with the top, or not shown to be worse (an untestable comparison shows nothing)
        if rank[other] == rank[top] or not worse:
            best.add(other)
    return best


def _rows_for_cell(
    group: str, metric: str, hib: bool, cells: dict[str, dict[Any, float]], base: str, how: vd.Settings
) -> list[Row]:
    """The rows of one setting × metric: estimates, ranks, best set and the verdicts vs ``base``. A variant
    the verdicts read worse than the baseline (or the baseline, when one reads better than it) leaves the
    best set, unless it is the top."""
    sign = 1.0 if hib else -1.0
    rows: dict[str, Row] = {}
    for variant, values in cells.items():
        x = np.array(list(values.values()), dtype=float)
        est = estimates(x, bounds=value_range(metric))
        std = float(x.std(ddof=1)) if len(x) > 1 else math.nan
        rows[variant] = Row(
            group,
            variant,
            metric,
            hib,
            len(x),
            est["mean"],
            std,
            est["ci_low"],
            est["ci_high"],
            iqm=est["iqm"],
            iqm_low=est["iqm_low"],
            iqm_high=est["iqm_high"],
            baseline=base,
            seeds=",".join(str(s) for s in sorted(values, key=str)),
        )
    # ranks by mean, ties alike (means equal to 12 digits are a tie, not float noise)
    order = list(rows)
    ranks = stats.rankdata([round(-sign * rows[v].mean, 12) for v in order], method="min")
    for variant, rank in zip(order, ranks, strict=True):
        rows[variant].rank = int(rank)
    for variant in best_group(cells, {v: rows[v].rank for v in order}, sign, metric, how):
        rows[variant].best = True
    # verdicts against the baseline: one Holm family per setting and metric
    if base in cells:
        compared = [v for v in order if v != base]
        gains = [sign * paired(cells[v], cells[base]) for v in compared]
        rope = how.rope_for(metric)
        verdicts, p, p_holm, _ = vd.family_verdicts(gains, rope, how.alpha, how.test)
        for variant, g, verdict, pv, ph in zip(compared, gains, verdicts, p, p_holm, strict=True):
            row = rows[variant]
            row.n_pairs, row.test, row.rope = len(g), how.test, rope
            row.p_value, row.p_holm, row.verdict = float(pv), float(ph), str(verdict)  # no pair: too few
            ours, theirs = cells[variant], cells[base]  # P(improvement) needs no pairs: runs of other seeds
            apart = {replicate_parts(k)[1] for k in ours} != {replicate_parts(k)[1] for k in theirs}
            skip = np.array([[not_independent(a, b, apart) for b in theirs] for a in ours], dtype=bool)
            x = sign * np.array(list(ours.values()), dtype=float)
            pi = prob_improvement(x, sign * np.array(list(theirs.values()), dtype=float), skip=skip)
            row.prob_improvement, row.prob_improvement_low, row.prob_improvement_high = pi
            if len(g) == 0:
                continue
            if how.test == "t":  # the mean and its t-interval; in the metric's own direction
                estimate, (lo, hi) = float(g.mean()), (float(b[0]) for b in vd.mean_ci(g[None]))
            else:  # what the signed-rank test is about: the Hodges-Lehmann estimate, its interval
                estimate, lo, hi = walsh_interval(g)
            row.diff_vs_baseline = float(sign * estimate)
            row.diff_low, row.diff_high = sorted((float(sign * lo), float(sign * hi)))
            row.diff_sd = float(g.std(ddof=1)) if len(g) > 1 else math.nan
            row.paired_win_share = paired_win_share(g)
        shown_worse = {v for v in compared if rows[v].verdict == "worse"}
        shown_worse |= {base} if any(rows[v].verdict == "better" for v in compared) else set()
        top = min(order, key=lambda v: (rows[v].rank, v))
        for variant in shown_worse - {top}:  # the table never reads one row both bold and worse
            rows[variant].best = False
    return [rows[v] for v in order]


#: a run's temperature when none was fitted (validation classified without a mistake): its ``*_ts``
#: metrics are then its raw ones
UNFITTED_TEMPERATURE = 1.0


def unscaled_settings(runs: list[ReportRun]) -> set[str]:
    """The settings in which no ok run fitted a temperature: their ``test/nll_ts`` and ``test/ece_ts``
    repeat ``test/nll`` and ``test/ece``, so the report leaves them out and says why."""
    temperatures: dict[str, set[float]] = defaultdict(set)
    for r in runs:
        if r.ok and "test/temperature" in r.metrics:
            temperatures[setting_label(r.group)].add(r.metrics["test/temperature"])
    return {g for g, ts in temperatures.items() if ts == {UNFITTED_TEMPERATURE}}


def summarize(
    runs: list[ReportRun], baseline: str | None = "ce", how: vd.Settings | None = None
) -> list[Row]:
    """One :class:`Row` per (group, variant, metric) over the ok runs."""
    how = how or vd.Settings()
    by_cell: dict[tuple[str, str], dict[str, dict[Any, float]]] = defaultdict(lambda: defaultdict(dict))
    modes: dict[tuple[str, str], str | None] = {}
    unscaled = unscaled_settings(runs)
    for r in runs:
        if not r.ok:
            continue
        for metric, value in r.metrics.items():
            if is_descriptive(metric):  # coverage and width: in the calibration figure, not ranked
                continue
            group = setting_label(r.group)
            if group in unscaled and metric.endswith("_ts"):
                continue
            by_cell[(group, metric)][r.variant][r.replicate] = value
            modes[(group, metric)] = r.monitor.get("mode")
    rows: list[Row] = []
    for group in sorted({g for g, _ in by_cell}):
        variants = sorted({v for (g, _), cells in by_cell.items() if g == group for v in cells})
        base = choose_baseline(variants, baseline)
        for metric in sorted(m for g, m in by_cell if g == group):
            cells = dict(sorted(by_cell[(group, metric)].items()))
            hib = higher_is_better(metric, modes.get((group, metric)))
            rows.extend(_rows_for_cell(group, metric, hib, cells, base, how))
    return rows
