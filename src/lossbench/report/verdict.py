"""Verdicts for "variant vs baseline" over paired replicates, with family-wise error control.

Within one setting and metric, every variant is compared with the baseline on the replicates both have
(same seed and data_seed). For ``m`` such comparisons with paired differences ``d_1..d_n`` (variant −
baseline, signed so that a positive *gain* is an improvement):

* **difference test** — two-sided paired t-test (default) or Wilcoxon signed-rank test of ``E[d] = 0``;
  the ``m`` p-values are Holm-adjusted (Holm 1979), so for one setting *and metric* the chance that any
  variant is called ``better`` or ``worse`` when none differs is at most ``alpha`` (each metric is its own
  family; claims on several metrics of one setting are separate families);
* **equivalence test** — two one-sided t-tests (TOST, Schuirmann 1987) of ``|E[d]| < rope`` (a region of
  practical equivalence in the metric's own units, Benavoli et al. 2017, JMLR 18(77)), Holm-adjusted as
  well;
* **probability of improvement** — the share of replicates in which the variant beats the baseline (ties
  count ½), with a percentile-bootstrap CI over replicates (Agarwal et al. 2021, NeurIPS, "Deep RL at the
  edge of the statistical precipice", in its paired form).

The verdict is ``better`` / ``worse`` (by the sign of the tested estimate: the mean gain for the t-test,
the Hodges–Lehmann estimate for the Wilcoxon test) when the adjusted difference p-value is below ``alpha``,
``equivalent`` when the adjusted TOST p-value is, else ``undecided``. The error rates of these rules are
checked by simulation in ``scripts/validate_stats.py`` (null, power and equivalence scenarios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTS = ("t", "wilcoxon")
VERDICTS = ("better", "worse", "equivalent", "undecided")
DEFAULT_ROPE = 0.005
DEFAULT_ALPHA = 0.05
BOOTSTRAP_SAMPLES = 2000


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count as hypotheses)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * q[order])
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    out[ok] = result
    return out


def paired_p_values(gains: np.ndarray, test: str = "t") -> np.ndarray:
    """Two-sided p-values of ``E[d] = 0`` per row of ``gains`` ``[m, n]`` (NaN for n < 2).

    Rows whose differences are all equal have no variance: a zero row gets p = 1, a constant non-zero row
    the exact sign-test p-value ``2 · 2^-n`` (what any rank test gives when every replicate agrees).
    """
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    m, n = gains.shape
    p = np.full(m, np.nan)
    if n < 2:
        return p
    # no variance, up to float noise relative to the differences' size
    scale = np.maximum(np.abs(gains).max(axis=1), 1e-12)
    constant = np.ptp(gains, axis=1) <= 1e-9 * scale
    zero = constant & (np.abs(gains[:, 0]) <= 1e-12)
    p[zero] = 1.0
    p[constant & ~zero] = min(1.0, 2.0 * 0.5**n)
    rest = ~constant
    if rest.any():
        if test == "t":
            p[rest] = stats.ttest_1samp(gains[rest], 0.0, axis=1).pvalue
        else:
            p[rest] = [stats.wilcoxon(row).pvalue for row in gains[rest]]
    return p


def tost_p_values(gains: np.ndarray, rope: float) -> np.ndarray:
    """p-values of the two one-sided t-tests that ``-rope < E[d] < rope`` per row (NaN for n < 2)."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    m, n = gains.shape
    if n < 2:
        return np.full(m, np.nan)
    mean = gains.mean(axis=1)
    se = gains.std(axis=1, ddof=1) / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low = (mean + rope) / se  # H0: E[d] <= -rope
        t_high = (mean - rope) / se  # H0: E[d] >= +rope
    p_low = stats.t.sf(t_low, n - 1)
    p_high = stats.t.cdf(t_high, n - 1)
    exact = se == 0  # no variance: equivalent exactly when the constant lies inside the rope
    p = np.maximum(p_low, p_high)
    p[exact] = np.where(np.abs(mean[exact]) < rope, 0.0, 1.0)
    return p


def mean_ci(gains: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """t-interval of the mean per row of ``gains`` ``[m, n]``."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    m, n = gains.shape
    if n < 2:
        return np.full(m, np.nan), np.full(m, np.nan)
    mean = gains.mean(axis=1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * gains.std(axis=1, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


def location(gains: np.ndarray, test: str = "t") -> float:
    """The gain's estimate that the difference test is about: the mean (t-test), or the Hodges–Lehmann
    estimate, the median of the Walsh averages ``(d_i + d_j) / 2, i <= j`` (Wilcoxon signed-rank test)."""
    g = np.asarray(gains, dtype=float)
    if len(g) == 0:
        return math.nan
    if test == "t":
        return float(g.mean())
    i, j = np.triu_indices(len(g))
    return float(np.median((g[i] + g[j]) / 2))


def _decide(mean: np.ndarray, p_diff: np.ndarray, p_equiv: np.ndarray, alpha: float) -> np.ndarray:
    """better/worse by the sign of the tested estimate (``mean``) when the difference test rejects."""
    out = np.full(len(mean), "undecided", dtype=object)
    decided = p_diff < alpha
    out[decided & (mean > 0)] = "better"
    out[decided & (mean < 0)] = "worse"
    out[~decided & (p_equiv < alpha)] = "equivalent"
    return out


def verdicts(
    gains: np.ndarray,
    rope: float = DEFAULT_ROPE,
    alpha: float = DEFAULT_ALPHA,
    test: str = "t",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verdicts of ``m`` comparisons of one family (one setting and metric): ``(verdict, p_holm, tost_holm)``.

    ``gains`` ``[m, n]``: paired differences, positive = the variant improves on the baseline.
    """
    if test not in TESTS:
        raise ValueError(f"test={test!r}: choose one of {', '.join(TESTS)}")
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    p_diff = holm(paired_p_values(gains, test))
    p_equiv = holm(tost_p_values(gains, rope))
    estimate = np.array([location(g, test) for g in gains])
    return _decide(estimate, p_diff, p_equiv, alpha), p_diff, p_equiv


def family_verdicts(
    gains: list[np.ndarray],
    rope: float = DEFAULT_ROPE,
    alpha: float = DEFAULT_ALPHA,
    test: str = "t",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`verdicts` for comparisons with different numbers of pairs: ``(verdict, p, p_holm, tost)``."""
    if not gains:
        empty = np.array([])
        return empty.astype(object), empty, empty, empty
    p, q = np.full(len(gains), np.nan), np.full(len(gains), np.nan)
    by_length: dict[int, list[int]] = {}
    for i, g in enumerate(gains):
        by_length.setdefault(len(g), []).append(i)
    for n, rows in by_length.items():  # one vectorised call per number of pairs
        if n == 0:
            continue
        block = np.array([np.asarray(gains[i], dtype=float) for i in rows])
        p[rows], q[rows] = paired_p_values(block, test), tost_p_values(block, rope)
    mean = np.array([location(g, test) for g in gains])
    p_holm, q_holm = holm(p), holm(q)
    return _decide(mean, p_holm, q_holm, alpha), p, p_holm, q_holm


def prob_improvement(
    gains: np.ndarray, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Share of replicates with a positive gain (ties ½) and its percentile-bootstrap CI over replicates."""
    g = np.asarray(gains, dtype=float)
    if len(g) == 0:
        return math.nan, math.nan, math.nan
    wins = (g > 0) + 0.5 * (g == 0)
    if len(g) < 2:  # one pair: a share, but no interval
        return float(wins.mean()), math.nan, math.nan
    rng = np.random.default_rng(seed)
    boot = wins[rng.integers(0, len(g), size=(samples, len(g)))].mean(axis=1)
    lo, hi = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2])
    return float(wins.mean()), float(lo), float(hi)


def estimates(
    values: np.ndarray, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> dict[str, float]:
    """Mean and interquartile mean (25% trimmed mean) of ``values`` with percentile-bootstrap CIs.

    Resampling is vectorised (``samples × n`` indices at once). With fewer than ~10 values a bootstrap CI
    is too narrow (it cannot see variation the sample does not show); the report says so.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    nan = math.nan
    if n == 0:
        return dict(mean=nan, ci_low=nan, ci_high=nan, iqm=nan, iqm_low=nan, iqm_high=nan)
    out = {"mean": float(x.mean()), "iqm": float(stats.trim_mean(x, 0.25))}
    if n < 2:
        return {**out, "ci_low": nan, "ci_high": nan, "iqm_low": nan, "iqm_high": nan}
    rng = np.random.default_rng(seed)
    boot = x[rng.integers(0, n, size=(samples, n))]
    q = [0.5 - level / 2, 0.5 + level / 2]
    out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(boot.mean(axis=1), q))
    out["iqm_low"], out["iqm_high"] = (float(v) for v in np.quantile(stats.trim_mean(boot, 0.25, axis=1), q))
    return out


#: the largest replicate count :func:`replicates_needed` reports
MAX_REPLICATES = 1000


def replicates_needed(
    sd: float, delta: float, comparisons: int = 1, alpha: float = DEFAULT_ALPHA, power: float = 0.8
) -> int | None:
    """Replicates a paired t-test needs to detect a true gain ``delta`` with ``power``, at the level Holm
    gives the first of ``comparisons`` tests (``alpha / comparisons``), for a paired-difference std ``sd``
    (exact, from the noncentral t); ``None`` when it is undefined or above :data:`MAX_REPLICATES`."""
    if not (sd > 0 and delta > 0) or math.isnan(sd):
        return None
    level = alpha / max(comparisons, 1)
    n = np.arange(2, MAX_REPLICATES + 1)
    t_crit = stats.t.ppf(1 - level / 2, n - 1)
    achieved = stats.nct.sf(t_crit, n - 1, delta / sd * np.sqrt(n))
    enough = np.flatnonzero(achieved >= power)
    return int(n[enough[0]]) if len(enough) else None


@dataclass(frozen=True)
class Settings:
    """How the report decides: the ROPE per metric (a default and overrides), the level and the test."""

    rope: float = DEFAULT_ROPE
    rope_by_metric: tuple[tuple[str, float], ...] = ()
    alpha: float = DEFAULT_ALPHA
    test: str = "t"

    def rope_for(self, metric: str) -> float:
        return dict(self.rope_by_metric).get(metric.removesuffix(" (best)"), self.rope)
