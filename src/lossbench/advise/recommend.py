"""The recommendation: each shortlisted loss's verdict against the baseline on the deciding metric, and
the loss to use — a loss called better than the baseline, else the baseline itself (never a chance
winner: "better" is the report's Holm-controlled paired test, see :mod:`lossbench.report.verdict`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from lossbench.report import seeds
from lossbench.report import verdict as vd
from lossbench.report.stats import Row


@dataclass
class LossVerdict:
    """One shortlisted loss against the baseline on the deciding metric."""

    loss: str
    #: better | worse | equivalent | undecided[ (too few replicates)] | identical runs | constant difference |
    #: baseline
    verdict: str
    mean: float
    n: int
    diff: float = math.nan  # mean paired difference to the baseline, in the metric's units
    diff_low: float = math.nan
    diff_high: float = math.nan
    prob_improvement: float = math.nan
    p_holm: float = math.nan
    more_replicates: int | None = None  # about how many more would settle an undecided verdict
    beyond_cap: bool = False  # settling it would take more than seeds.MAX_REPLICATES replicates
    #: the difference those replicates are sized to detect: the observed one, or one ROPE when smaller
    settle_effect: float = math.nan
    settle_on_rope: bool = False


def loss_verdicts(rows: list[Row], metric: str, how: vd.Settings) -> list[LossVerdict]:
    """The rows of ``metric`` (first setting) as verdicts, the baseline first."""
    mine = [r for r in rows if r.metric == metric]
    if not mine:
        return []
    group = mine[0].group
    mine = [r for r in mine if r.group == group]
    # the Holm family more replicates would test, as the report counts it: identical runs are no hypothesis
    compared = sum(r.variant != r.baseline and r.verdict not in vd.NO_VARIATION for r in mine)
    out = []
    for r in mine:
        if r.variant == r.baseline:
            out.append(LossVerdict(r.variant, "baseline", r.mean, r.n))
            continue
        more, beyond, effect, on_rope = None, False, math.nan, False
        if vd.is_undecided(r.verdict or "undecided"):
            # sized on the difference as observed (a verdict needs it told from 0), or on one ROPE when the
            # observed one is smaller (telling it from the ROPE settles "equivalent")
            rope = how.rope_for(metric)
            observed = abs(r.diff_vs_baseline) if math.isfinite(r.diff_vs_baseline) else 0.0
            effect, on_rope = max(observed, rope), observed <= rope
            needed = seeds.replicates_needed(
                r.diff_sd, effect, compared, how.alpha, test=how.test, pilot=r.n_pairs
            )
            beyond = needed is not None and math.isinf(needed)
            more = None if needed is None or beyond else max(int(needed) - r.n_pairs, 1)
        out.append(
            LossVerdict(
                r.variant,
                r.verdict or "undecided",
                r.mean,
                r.n,
                r.diff_vs_baseline,
                r.diff_low,
                r.diff_high,
                r.prob_improvement,
                r.p_holm,
                more,
                beyond,
                effect,
                on_rope,
            )
        )
    return sorted(out, key=lambda v: v.verdict != "baseline")


def _gain(v: LossVerdict, higher_is_better: bool) -> float:
    return v.diff if higher_is_better else -v.diff


def choose(verdicts: list[LossVerdict], higher_is_better: bool) -> LossVerdict:
    """The better-called loss with the largest mean gain; the baseline when none is better."""
    better = [v for v in verdicts if v.verdict == "better"]
    if better:
        return max(better, key=lambda v: _gain(v, higher_is_better))
    return next(v for v in verdicts if v.verdict == "baseline")


#: the test metric whose change a recommendation also states: what the deciding metric's gain costs
COUNTERPART = {"bal_acc": "acc", "acc": "bal_acc", "mae": "rmse", "rmse": "mae", "map": "f1"}
#: metric names as the recommendation writes them
LABELS = {"acc": "accuracy", "bal_acc": "balanced accuracy", "f1": "F1", "map": "mAP", "mae": "MAE",
          "rmse": "RMSE", "nll": "NLL", "ece": "ECE"}  # fmt: skip


def trade_off(rows: list[Row], loss: str, baseline: str, metric: str) -> str:
    """``balanced accuracy 0.683 -> 0.886, accuracy 0.973 -> 0.869``: the mean test values of ``baseline``
    and ``loss`` on ``metric`` and on its :data:`COUNTERPART` (where the runs logged it)."""
    mine = [r for r in rows if r.metric == metric]
    if not mine or loss == baseline:
        return ""
    name = metric.split("/", 1)[-1]
    parts = []
    for m in (name, COUNTERPART.get(name)):
        means = {r.variant: r.mean for r in rows if r.group == mine[0].group and r.metric == f"test/{m}"}
        if m is not None and loss in means and baseline in means:
            parts.append(f"{LABELS.get(m, m)} {means[baseline]:.3f} -> {means[loss]:.3f}")
    return ", ".join(parts)


def sentence(verdicts: list[LossVerdict], chosen: LossVerdict, metric: str, trade: str = "") -> str:
    """``Use logit_adjusted: better than ce on test/bal_acc by +0.030 [0.020, 0.040], P(improvement)
    0.97 (balanced accuracy 0.800 -> 0.830, accuracy 0.950 -> 0.940); balanced_softmax is equivalent;
    focal is undecided — about 8 more replicates would settle it.`` (``trade``: :func:`trade_off`)"""
    base = next(v.loss for v in verdicts if v.verdict == "baseline")
    if chosen.verdict == "better":
        head = (
            f"Use {chosen.loss}: better than {base} on {metric} by {chosen.diff:+.3f} "
            f"[{chosen.diff_low:+.3f}, {chosen.diff_high:+.3f}], P(improvement) {chosen.prob_improvement:.2f}"
        ) + (f" ({trade})" if trade else "")
    else:
        head = f"Use {base} (the baseline): no shortlisted loss is better on {metric}"
    rest = []
    for v in verdicts:
        if v is chosen or v.verdict == "baseline":
            continue
        effect = v.settle_effect
        signed = v.diff if math.isfinite(v.diff) else effect  # its direction: the line reads which way
        sized = f"one ROPE ({effect:g})" if v.settle_on_rope else f"{signed:+.3g} as observed"
        if vd.is_undecided(v.verdict) and v.more_replicates:
            rest.append(
                f"{v.loss} is {v.verdict} — about {v.more_replicates} more "
                f"replicate{'s' if v.more_replicates != 1 else ''} would settle it, if the true difference "
                f"is {sized}"
            )
        elif vd.is_undecided(v.verdict) and v.beyond_cap:
            rest.append(
                f"{v.loss} is {v.verdict} — settling it, if the true difference is {sized}, would take > "
                f"{seeds.MAX_REPLICATES} replicates"
            )
        elif vd.is_undecided(v.verdict):
            rest.append(f"{v.loss} is {v.verdict}")
        elif v.verdict == vd.IDENTICAL:
            rest.append(f"{v.loss} gave identical runs (the same result at every seed: no test applies)")
        elif v.verdict == vd.CONSTANT:
            rest.append(f"{v.loss} gave a constant difference (the same at every seed: no test applies)")
        else:
            rest.append(f"{v.loss} is {v.verdict}" + (" too" if v.verdict == "better" else ""))
    return "; ".join([head, *rest]) + "."


def as_json(verdicts: list[LossVerdict]) -> list[dict]:
    """Verdicts for ``recommendation.json`` (NaN as ``null``)."""
    clean = []
    for v in verdicts:
        d = asdict(v)
        clean.append({k: (None if isinstance(x, float) and math.isnan(x) else x) for k, x in d.items()})
    return clean
