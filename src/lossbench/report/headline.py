"""The report's verdict paragraph: what the statistics decided, in plain words, one entry per setting."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from lossbench.report import seeds
from lossbench.report import verdict as vd
from lossbench.report.collect import ReportRun
from lossbench.report.intervals import LEVEL
from lossbench.report.stats import Row, paired, setting_label, unscaled_settings


def _num(x: float, signed: bool = False) -> str:
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _p(p: float) -> str:
    return "< 0.001" if p < 1e-3 else f"= {p:.4f}"  # as the table: 0.0496 is not "0.050"


def claim(row: Row, alpha: float = vd.DEFAULT_ALPHA) -> str:
    """``"logit_adjusted beats ce on test/bal_acc by +0.021 [0.012, 0.030] (P(improvement) 0.93, ...)"``;
    ``alpha``: the level the difference test ran at (``--alpha``)."""
    verb = "beats" if row.verdict == "better" else "is worse than"
    text = (
        f"{row.variant} {verb} {row.baseline} on {row.metric} by {_num(row.diff_vs_baseline, True)} "
        f"[{_num(row.diff_low, True)}, {_num(row.diff_high, True)}] ("
        + (f"P(improvement) {row.prob_improvement:.2f}, " if math.isfinite(row.prob_improvement) else "")
        + f"Holm p {_p(row.p_holm)}, {row.n_pairs} replicates)"
    )
    if row.diff_low <= 0 <= row.diff_high:
        if alpha > 1 - LEVEL:  # a test at alpha = 0.1 rejects where the 95% interval still reaches 0
            text += f", though Δ's 95% interval reaches 0 (the test ran at --alpha={alpha:g})"
        elif row.test == "wilcoxon":  # tied differences: the interval approximate, the test exact
            text += ", though Δ's signed-rank interval, approximate with tied differences, reaches 0"
        else:
            text += ", though Δ's 95% interval reaches 0"
    if row.rope > 0 and max(abs(row.diff_low), abs(row.diff_high)) < row.rope:  # real, but below the ROPE
        text += f", a difference within the ROPE (±{row.rope:g}): too small to matter at that ROPE"
    return text


def variance_sources(runs: list[ReportRun]) -> str:
    """Which sources of variation the replicates randomise (seed: init + order; data_seed: the split)."""
    seeds: dict[str, set] = defaultdict(set)
    splits: dict[str, set] = defaultdict(set)
    for r in runs:
        if r.ok:
            seeds[r.group + r.variant].add(r.seed)
            splits[r.group + r.variant].add(r.data_seed)
    varied = []
    if any(len(s) > 1 for s in seeds.values()):
        varied.append("initialisation and data order (seed)")
    if any(len(s) > 1 for s in splits.values()):
        varied.append("the train/val/test split (data_seed)")
    if not varied:
        return "Replicates: one run per variant, so no comparison can be decided."
    split_fixed = not any(len(s) > 1 for s in splits.values())
    fixed = "; the split is fixed (one data_seed), so the verdicts hold for this split" if split_fixed else ""
    return "Replicates randomise " + " and ".join(varied) + fixed + "."


def setting_summary(group: str, rows: list[Row], how: vd.Settings) -> str:
    """One paragraph for one setting: the claims, the equivalences and what is left undecided."""
    # the test metrics: the selection metric (val, best) would repeat them
    compared = [r for r in rows if r.group == group and r.verdict and not r.metric.endswith(" (best)")]
    if not compared:
        variants = sorted({r.variant for r in rows if r.group == group})
        if len(variants) == 1:
            return f"{group}: only {variants[0]} ran, so there is nothing to compare it with."
        return f"{group}: no paired replicates against the baseline, so nothing is decided."
    parts = [claim(r, how.alpha) for r in compared if r.verdict in ("better", "worse")]
    equivalent: dict[str, list[str]] = defaultdict(list)
    for r in compared:
        if r.verdict == "equivalent":
            equivalent[r.metric].append(r.variant)
    base = compared[0].baseline
    for metric, variants in sorted(equivalent.items()):
        rope = how.rope_for(metric)
        verb = "is" if len(variants) == 1 else "are"
        parts.append(f"{', '.join(variants)} {verb} equivalent to {base} on {metric} (within ±{rope:g})")
    for metric in sorted({r.metric for r in compared}):
        mine = [r for r in compared if r.metric == metric]
        too_few = [r.variant for r in mine if r.verdict == vd.TOO_FEW]
        if too_few:
            parts.append(
                f"{', '.join(too_few)} against {base} on {metric}: no verdict, fewer than "
                f"{vd.MIN_REPLICATES} paired replicates"
            )
        identical = [r.variant for r in mine if r.verdict == vd.IDENTICAL]
        if identical:
            parts.append(
                f"{', '.join(identical)} against {base} on {metric}: identical runs (every replicate gives "
                "the same result, so no test applies and no p-value is given)"
            )
        for r in (r for r in mine if r.verdict == vd.CONSTANT):
            parts.append(
                f"{r.variant} against {base} on {metric}: a constant difference (Δ = "
                f"{r.diff_vs_baseline:+.4g} at every replicate: the seeds change neither result, so no test "
                "applies, no p-value is given and more such replicates would not decide it)"
            )
    parts += needs_text(compared, how)
    if not parts:
        parts.append("nothing is decided")
    return f"{group}: " + "; ".join(parts) + "."


def needs_text(compared: list[Row], how: vd.Settings) -> list[str]:
    """Per metric: how many comparisons are undecided, and the median number of replicates the selected
    test would need to resolve a difference of one ROPE with 80% power, planned on the observed paired
    variance's upper confidence bound (:func:`lossbench.report.seeds.replicates_needed`)."""
    family: dict[str, int] = defaultdict(int)  # the Holm family more replicates would test
    for r in compared:
        family[r.metric] += r.verdict not in vd.NO_VARIATION  # no p-value however many replicates
    out = []
    for metric in sorted({r.metric for r in compared if r.verdict == "undecided"}):
        undecided = [r for r in compared if r.metric == metric and r.verdict == "undecided"]
        rope = how.rope_for(metric)
        test = "paired t-test" if how.test == "t" else "Wilcoxon signed-rank test"
        needed = [
            seeds.replicates_needed(
                r.diff_sd, rope, family[metric], how.alpha, test=how.test, pilot=r.n_pairs
            )
            for r in undecided
        ]
        text = f"{len(undecided)} comparison{'s' if len(undecided) > 1 else ''} undecided on {metric}"
        if (typical := seeds.typical(needed)) is not None:
            text += (
                f" — {typical} would resolve a difference of one ROPE (±{rope:g}) with 80% power with the "
                f"{test}, planned on the observed paired variance's {seeds.SD_CONFIDENCE:.0%} upper bound"
            )
        tested = sum(r.metric == metric and not math.isnan(r.p_value) for r in compared)  # Holm's family now
        floor = seeds.min_pairs(how.test, tested, how.alpha)
        if how.test == "wilcoxon" and (few := min(r.n_pairs for r in undecided)) < floor:
            text += (
                f"; with {few} pairs the Wilcoxon test cannot reject at all (its smallest p-value is "
                f"2·2⁻ⁿ: it needs {floor} pairs at Holm's first level)"
            )
        out.append(text)
    return out


UNSCALED_NOTE = (
    " No run fitted a temperature (each classified its validation split without a mistake, so T = 1 was "
    "kept): test/nll_ts and test/ece_ts would repeat test/nll and test/ece, and are left out."
)
#: a paired difference this many robust standard deviations (1.4826 · MAD) from their median is named
OUTLIER_Z = 5.0
#: fewest paired differences whose median and MAD can tell an outlier
OUTLIER_MIN_PAIRS = 5


def outlier_note(group: str, rows: list[Row], runs: list[ReportRun], test: str = "t") -> str:
    """The claims of ``group`` (better, worse, equivalent) whose paired differences hold an outlier: the
    paired t-test and Δ's t-interval assume none (with 10% of runs 5 std off, Δ's 95% interval covered
    71–87% in simulation), so the note names the replicates to look at. "" when there is none. Under the
    Wilcoxon test (``test``) only *equivalent* claims, which still rest on two one-sided t-tests."""
    claims = ("better", "worse", "equivalent") if test == "t" else ("equivalent",)
    values: dict[tuple[str, str], dict] = defaultdict(dict)
    for run in runs:
        if run.ok and setting_label(run.group) == group:
            for metric, value in run.metrics.items():
                values[(run.variant, metric)][run.replicate] = value
    notes = []
    for r in rows:
        if r.group != group or r.verdict not in claims:
            continue
        mine, base = values[(r.variant, r.metric)], values[(r.baseline, r.metric)]
        common = sorted(set(mine) & set(base), key=str)  # the replicates paired() pairs, in its order
        if len(common) < OUTLIER_MIN_PAIRS:
            continue
        d = paired(mine, base)
        spread = 1.4826 * float(np.median(np.abs(d - np.median(d))))
        far = [str(common[i]) for i in np.flatnonzero(np.abs(d - np.median(d)) > OUTLIER_Z * spread)]
        if spread > 0 and far:
            notes.append(f"{r.variant} against {r.baseline} on {r.metric} (replicate {', '.join(far)})")
    if not notes:
        return ""
    return (
        f" A paired difference lies more than {OUTLIER_Z:g} robust std from the others in: "
        + "; ".join(notes)
        + (
            ". The t-test and Δ's interval assume no such outlier: look at those runs."
            if test == "t"
            else ". The two one-sided t-tests behind 'equivalent' assume no such outlier: look at those runs."
        )
    )


def headline(rows: list[Row], runs: list[ReportRun], how: vd.Settings) -> list[str]:
    """The verdict paragraph: one entry per setting, then how the replicates vary and what was tested."""
    groups = sorted({r.group for r in rows})
    unscaled = unscaled_settings(runs)
    entries = [
        setting_summary(g, rows, how)
        + outlier_note(g, rows, runs, how.test)
        + (UNSCALED_NOTE if g in unscaled else "")
        for g in groups
    ]
    n_min = min((r.n for r in rows), default=0)
    method = (
        f"Verdicts: {'paired t-test' if how.test == 't' else 'Wilcoxon signed-rank test'} against the "
        f"baseline, Holm-adjusted over the variants of each setting and metric (family-wise α = "
        f"{how.alpha:g} per metric: claims on different metrics are separate families); 'equivalent' = two "
        f"one-sided tests that the difference lies within the ROPE "
        f"(±{how.rope:g} in the metric's units unless set per metric). {variance_sources(runs)}"
    )
    method += (
        " Intervals are 95%: t-intervals for means"
        + (" and Δ" if how.test == "t" else ", for Δ (the Hodges–Lehmann estimate) the signed-rank interval")
        + ", Yuen's trimmed-mean interval for the IQM, the "
        "Hanley–McNeil score interval for P(improvement) (every run of a loss against every run of the "
        "baseline of another seed, of the same data split where the two ran on different splits, ties ½). "
        "A verdict needs at least "
        f"{vd.MIN_REPLICATES} paired replicates whose differences vary; otherwise no p-value is given."
    )
    if 0 < n_min < vd.MIN_REPLICATES:
        method += f" Some variants have only {n_min} replicate{'s' if n_min > 1 else ''}: too few to decide."
    return [*entries, method]
