"""The simulated scenarios of ``scripts/validate_stats.py``: each draws sweeps as the report sees them and
returns how often a verdict rule says what it should (the rates and targets are in that script)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import integrate, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lossbench.record import RunRecord  # noqa: E402
from lossbench.report import budget, ranks  # noqa: E402
from lossbench.report import verdict as vd  # noqa: E402
from lossbench.report.collect import ReportRun  # noqa: E402
from lossbench.report.improvement import prob_improvement  # noqa: E402
from lossbench.report.intervals import t_interval, trimmed_mean_interval  # noqa: E402
from lossbench.report.seeds import replicates_needed  # noqa: E402
from lossbench.report.stats import best_group, summarize  # noqa: E402
from lossbench.report.verdict import DEFAULT_ALPHA, DEFAULT_ROPE, verdicts  # noqa: E402

POINT = 0.01
NOISES = ("normal", "t3", "seed-correlated")
#: the report's intervals: 95% nominal, ≥ 93% simulated; P(improvement)'s: ≥ 90% at 5 replicates
INTERVAL_TARGET, IMPROVEMENT_TARGET = 0.93, 0.90
SHIFTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)


def null_scenario(rng, sims: int, losses: int, replicates: int, test: str) -> float:
    """Share of settings with any better/worse call when no loss differs (scores iid, std 1 point)."""
    hits = 0
    for _ in range(sims):
        scores = 0.9 + POINT * rng.standard_normal((losses, replicates))
        gains = scores[1:] - scores[0]
        verdict, _, _ = verdicts(gains, DEFAULT_ROPE, DEFAULT_ALPHA, test)
        hits += bool(np.isin(verdict, ("better", "worse")).any())
    return hits / sims


def one_loss_differs(
    rng, sims: int, losses: int, replicates: int, gain: float, sd: float, test: str, want: str
) -> float:
    """Share of settings where the loss with a true paired ``gain`` (paired std ``sd``) gets ``want``;
    the other losses have no gain, with the same paired std."""
    hits = 0
    for _ in range(sims):
        gains = sd * rng.standard_normal((losses - 1, replicates))
        gains[0] += gain
        verdict, _, _ = verdicts(gains, DEFAULT_ROPE, DEFAULT_ALPHA, test)
        hits += verdict[0] == want
    return hits / sims


def friedman_null(rng, sims: int, settings: int, losses: int) -> float:
    """Share of null score matrices (iid uniform) on which the across-settings decision rejects."""
    return (
        sum(ranks.friedman(rng.random((settings, losses)), True).rejects(DEFAULT_ALPHA) for _ in range(sims))
        / sims
    )


def draw(rng, noise: str, sims: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``[sims, n]`` of a loss with true mean ``shift`` and of a baseline with true mean 0, paired by
    seed (column)."""
    if noise == "normal":
        return shift + rng.standard_normal((sims, n)), rng.standard_normal((sims, n))
    if noise == "t3":
        return shift + rng.standard_t(3, (sims, n)), rng.standard_t(3, (sims, n))
    seed_effect = rng.standard_normal((sims, n))
    own = 0.5 * rng.standard_normal((2, sims, n))
    return shift + seed_effect + own[0], seed_effect + own[1]


def true_improvement(noise: str, shift: float) -> float:
    """P(X > Y) for independent runs X (mean ``shift``) and Y (mean 0) of :func:`draw`."""
    if noise == "normal":
        return float(stats.norm.cdf(shift / np.sqrt(2)))
    if noise == "seed-correlated":  # runs of different seeds: the seed effects differ too
        return float(stats.norm.cdf(shift / np.sqrt(2 * (1 + 0.25))))
    t3 = stats.t(3)
    return float(integrate.quad(lambda y: t3.pdf(y) * t3.sf(y - shift), -np.inf, np.inf)[0])


def interval_coverage(rng, sims: int, n: int, noise: str) -> dict[str, float]:
    """Share of simulated settings whose 95% intervals of the mean, the IQM (symmetric noise: the mean) and
    the mean paired difference contain the true value."""
    shift = 0.3
    a, b = draw(rng, noise, sims, n, shift)
    lo, hi = t_interval(a)
    d_lo, d_hi = t_interval(a - b)
    iqm = np.array([trimmed_mean_interval(row)[1:] for row in a])
    return {
        "mean": float(np.mean((lo <= shift) & (shift <= hi))),
        "iqm": float(np.mean((iqm[:, 0] <= shift) & (shift <= iqm[:, 1]))),
        "diff": float(np.mean((d_lo <= shift) & (shift <= d_hi))),
    }


def improvement_coverage(rng, sims: int, n: int, noise: str, shift: float) -> float:
    """Share of simulated settings whose P(improvement) interval contains the true P(X > Y)."""
    truth = true_improvement(noise, shift)
    a, b = draw(rng, noise, sims, n, shift)
    hits = 0
    for x, y in zip(a, b, strict=True):
        _, lo, hi = prob_improvement(x, y, skip=np.eye(n, dtype=bool))  # paired by seed, as the report
        hits += lo <= truth <= hi
    return hits / sims


def improvement_bias(rng, sims: int, n: int, noise: str, shift: float = 1.0) -> dict[str, float]:
    """The mean P(improvement) estimate of runs paired by seed minus the true P(X > Y), and the bound it
    must stay within (0.03 plus two standard errors of the simulated mean)."""
    a, b = draw(rng, noise, sims, n, shift)
    skip = np.eye(n, dtype=bool)
    estimates = np.array([prob_improvement(x, y, skip=skip)[0] for x, y in zip(a, b, strict=True)])
    bias = float(estimates.mean() - true_improvement(noise, shift))
    return {"rate": abs(bias), "max": 0.03 + 2 * float(estimates.std() / np.sqrt(sims))}


def best_group_null(rng, sims: int, losses: int, replicates: int = 5) -> float:
    """Share of settings of ``losses`` equal losses (seed-correlated scores) whose best group leaves one
    out."""
    how = vd.Settings()
    out = 0
    for _ in range(sims):
        scores = 0.9 + POINT * (
            rng.standard_normal(replicates) + 0.5 * rng.standard_normal((losses, replicates))
        )
        cells = {f"loss{i}": dict(enumerate(row)) for i, row in enumerate(scores)}
        means = scores.mean(axis=1)
        rank = {f"loss{i}": int(1 + (means > m).sum()) for i, m in enumerate(means)}
        out += len(best_group(cells, rank, 1.0, "test/acc", how)) < losses
    return out / sims


def replicates_power(rng, sims: int, pilot: int, comparisons: int = 4) -> float:
    """Mean power, against a true gain of one ROPE (paired std 2 ROPEs), of the replicates the report
    says would resolve it, planned from ``pilot`` pairs (exact, from the noncentral t)."""
    sd, rope, level = 2 * DEFAULT_ROPE, DEFAULT_ROPE, DEFAULT_ALPHA / comparisons
    powers = []
    for _ in range(sims):
        observed = float(np.std(sd * rng.standard_normal(pilot), ddof=1))
        n = replicates_needed(observed, rope, comparisons, pilot=pilot)
        if n is None or np.isinf(n):
            powers.append(1.0)  # "more than the cap": no claim of a number
            continue
        t_crit = stats.t.ppf(1 - level / 2, n - 1)
        powers.append(float(stats.nct.sf(t_crit, n - 1, rope / sd * np.sqrt(n))))
    return float(np.mean(powers))


def coverage(rng, sims: int) -> dict[str, dict[str, float]]:
    """The coverage scenarios with their targets (lowered by 2 binomial std below 1,000 simulations)."""

    def target(level: float) -> float:
        return level if sims >= 1000 else level - 2 * float(np.sqrt(0.95 * 0.05 / sims))

    out = {}
    for noise in NOISES:
        for n in (3, 5, 10):
            for name, rate in interval_coverage(rng, sims, n, noise).items():
                out[f"cover_{name}_{noise}_n{n}"] = {"rate": rate, "min": target(INTERVAL_TARGET)}
        for shift in SHIFTS:
            rate = improvement_coverage(rng, sims, 5, noise, shift)
            out[f"cover_p_improvement_{noise}_shift{shift:g}"] = {
                "rate": rate,
                "min": target(IMPROVEMENT_TARGET),
            }
    return out


def _runs(scores: dict[str, list[float]]) -> list[ReportRun]:
    runs = []
    for loss, values in scores.items():
        for seed, value in enumerate(values):
            r = ReportRun(f"{loss}/{seed}", RunRecord("ok", loss=loss, data="toy", seed=seed, data_seed=0))
            r.metrics, r.group, r.variant = {"test/acc": value}, "toy", loss
            runs.append(r)
    return runs


def degenerate_cases() -> dict[str, bool]:
    """Fixed inputs with the outcome the report must give (True = it does)."""
    step = 1 / 360  # one test example of 360
    rows = summarize(_runs({"ce": [0.90, 0.91], "focal": [0.90 - step, 0.91 - step]}), baseline="ce")
    two = next(r for r in rows if r.variant == "focal")
    base = [0.90, 0.91, 0.92, 0.93, 0.94]
    rows = summarize(_runs({"ce": base, "focal": [x + step for x in base]}), baseline="ce")
    same = next(r for r in rows if r.variant == "focal")
    rows = summarize(_runs({"ce": base, "focal": [x + 0.1 + 0.01 * i for i, x in enumerate(base)]}), "ce")
    wins = next(r for r in rows if r.variant == "focal")
    a = np.array([0.60, 0.62, 0.65, 0.66, 0.67, 0.68, 0.69])
    b = np.array([0.61, 0.63, 0.64, 0.65, 0.66, 0.70, 0.71])
    text = budget.ranking_text({"a": a, "b": b}, higher_is_better=True)
    return {
        "degenerate_two_seeds": np.isnan(two.p_value) and two.verdict == vd.TOO_FEW,
        "degenerate_constant_difference": np.isnan(same.p_value)
        and same.verdict == vd.CONSTANT
        and np.isnan(same.diff_low),
        "degenerate_every_run_wins": wins.prob_improvement == 1.0 and wins.prob_improvement_low < 0.9,
        "crossing_curves": [n for n, _, _ in budget.crossings({"a": a, "b": b}, True)] == [3, 6]
        and "cross at 3 and 6 trials" in text
        and "same at every budget" not in text,
    }
