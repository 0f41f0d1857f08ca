"""Verdicts for "variant vs baseline" over paired replicates, with family-wise error control.

Within one setting and metric, every variant is compared with the baseline on the replicates both have
(same seed and data_seed). For ``m`` such comparisons with paired differences ``d_1..d_n`` (variant −
baseline, signed so that a positive *gain* is an improvement):

* **too few replicates** — with fewer than :data:`MIN_REPLICATES` (3) pairs no test is run: the verdict is
  ``undecided (too few replicates)``, with no p-value. Two pairs give a t-test one degree of freedom and a
  Wilcoxon test no attainable p below 0.5, and two equal differences would look like certainty;
* **identical runs** / **constant difference** — differences that do not vary across replicates
  (deterministic runs, or a seed that changes nothing) leave no run-to-run variation to test against: the
  verdict is ``identical runs`` when every difference is zero, ``constant difference`` otherwise (the
  same non-zero difference at every replicate, shown as Δ), with no p-value and no interval; more
  replicates of the same kind would not decide it. Neither kind, nor too few replicates, counts as a
  hypothesis in the Holm family;
* **difference test** — two-sided paired t-test (default) or Wilcoxon signed-rank test of ``E[d] = 0``;
  the ``m`` p-values are Holm-adjusted (Holm 1979), so for one setting *and metric* the chance that any
  variant is called ``better`` or ``worse`` when none differs is at most ``alpha`` (each metric is its own
  family; claims on several metrics of one setting are separate families);
* **equivalence test** — two one-sided t-tests (TOST, Schuirmann 1987) of ``|E[d]| < rope`` (a region of
  practical equivalence in the metric's own units, Benavoli et al. 2017, JMLR 18(77)), Holm-adjusted as
  well.

The verdict is ``better`` / ``worse`` (by the sign of the tested estimate: the mean gain for the t-test,
the Hodges–Lehmann estimate for the Wilcoxon test) when the adjusted difference p-value is below ``alpha``,
``equivalent`` when the adjusted TOST p-value is, else ``undecided``. The error rates of these rules, the
degenerate cases and the intervals' coverage are checked by simulation in ``scripts/validate_stats.py``.
Intervals live in :mod:`lossbench.report.intervals`, P(improvement) in :mod:`lossbench.report.improvement`
and the replicates a comparison needs in :mod:`lossbench.report.seeds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lossbench.report.improvement import prob_improvement as prob_improvement
from lossbench.report.intervals import estimates as estimates
from lossbench.report.intervals import hodges_lehmann, t_interval
from lossbench.report.seeds import MAX_REPLICATES as MAX_REPLICATES
from lossbench.report.seeds import MIN_REPLICATES as MIN_REPLICATES
from lossbench.report.seeds import replicates_needed as replicates_needed

TESTS = ("t", "wilcoxon")
TOO_FEW = "undecided (too few replicates)"
IDENTICAL = "identical runs"
CONSTANT = "constant difference"
#: the verdicts of differences that do not vary: no test applies, however many replicates
NO_VARIATION = (IDENTICAL, CONSTANT)
VERDICTS = ("better", "worse", "equivalent", "undecided", TOO_FEW, IDENTICAL, CONSTANT)
DEFAULT_ROPE = 0.005
DEFAULT_ALPHA = 0.05


def is_undecided(verdict: str) -> bool:
    """Whether a verdict decides nothing (``undecided``, with or without a reason)."""
    return verdict.startswith("undecided")


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


def constant(gains: np.ndarray) -> np.ndarray:
    """Per row of ``gains`` ``[m, n]``: True when the differences do not vary (up to float noise relative
    to their size)."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    if gains.shape[1] == 0:
        return np.zeros(gains.shape[0], dtype=bool)
    scale = np.maximum(np.abs(gains).max(axis=1), 1e-12)
    return np.ptp(gains, axis=1) <= 1e-9 * scale


def testable(gains: np.ndarray) -> np.ndarray:
    """Per row: at least :data:`MIN_REPLICATES` pairs whose differences vary."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    return np.full(gains.shape[0], gains.shape[1] >= MIN_REPLICATES) & ~constant(gains)


def paired_p_values(gains: np.ndarray, test: str = "t") -> np.ndarray:
    """Two-sided p-values of ``E[d] = 0`` per row of ``gains`` ``[m, n]``; NaN for rows that are not
    :func:`testable` (fewer than 3 pairs, or no variation)."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    p = np.full(gains.shape[0], np.nan)
    rest = testable(gains)
    if rest.any():
        if test == "t":
            p[rest] = stats.ttest_1samp(gains[rest], 0.0, axis=1).pvalue
        else:
            p[rest] = [stats.wilcoxon(row).pvalue for row in gains[rest]]
    return p


def tost_p_values(gains: np.ndarray, rope: float) -> np.ndarray:
    """p-values of the two one-sided t-tests that ``-rope < E[d] < rope`` per row; NaN for rows that are
    not :func:`testable`."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    m, n = gains.shape
    p = np.full(m, np.nan)
    rest = testable(gains)
    if not rest.any():
        return p
    g = gains[rest]
    mean = g.mean(axis=1)
    se = g.std(axis=1, ddof=1) / math.sqrt(n)
    p_low = stats.t.sf((mean + rope) / se, n - 1)  # H0: E[d] <= -rope
    p_high = stats.t.cdf((mean - rope) / se, n - 1)  # H0: E[d] >= +rope
    p[rest] = np.maximum(p_low, p_high)
    return p


def mean_ci(gains: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """t-interval of the mean per row of ``gains`` ``[m, n]`` (:func:`.intervals.t_interval`)."""
    return t_interval(gains, level)


def location(gains: np.ndarray, test: str = "t") -> float:
    """The gain's estimate that the difference test is about: the mean (t-test), or the Hodges–Lehmann
    estimate, the median of the Walsh averages ``(d_i + d_j) / 2, i <= j`` of the non-zero differences
    (Wilcoxon signed-rank test, which leaves zero differences out)."""
    g = np.asarray(gains, dtype=float)
    if len(g) == 0:
        return math.nan
    if test == "t":
        return float(g.mean())
    return hodges_lehmann(g)


def degenerate(gains: np.ndarray) -> str | None:
    """:data:`TOO_FEW`, :data:`IDENTICAL` (every difference zero) or :data:`CONSTANT` (the same non-zero
    difference at every replicate) for differences no test can decide, else None."""
    g = np.asarray(gains, dtype=float)
    if len(g) < MIN_REPLICATES:
        return TOO_FEW
    if not constant(g)[0]:
        return None
    return IDENTICAL if np.abs(g).max() <= 1e-12 else CONSTANT


def _decide(
    gains: list[np.ndarray], estimate: np.ndarray, p_diff: np.ndarray, p_equiv: np.ndarray, alpha: float
) -> np.ndarray:
    """better/worse by the sign of the tested estimate when the difference test rejects; the degenerate
    verdicts first."""
    out = np.full(len(estimate), "undecided", dtype=object)
    decided = p_diff < alpha
    out[decided & (estimate > 0)] = "better"
    out[decided & (estimate < 0)] = "worse"
    out[~decided & (p_equiv < alpha)] = "equivalent"
    for i, g in enumerate(gains):
        out[i] = degenerate(g) or out[i]
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
    verdict, _, p_diff, p_equiv = family_verdicts(list(gains), rope, alpha, test)
    return verdict, p_diff, p_equiv


def family_verdicts(
    gains: list[np.ndarray],
    rope: float = DEFAULT_ROPE,
    alpha: float = DEFAULT_ALPHA,
    test: str = "t",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`verdicts` for comparisons with different numbers of pairs: ``(verdict, p, p_holm, tost)``."""
    if test not in TESTS:
        raise ValueError(f"test={test!r}: choose one of {', '.join(TESTS)}")
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
    estimate = np.array([location(g, test) for g in gains])
    p_holm, q_holm = holm(p), holm(q)
    return _decide(gains, estimate, p_holm, q_holm, alpha), p, p_holm, q_holm


@dataclass(frozen=True)
class Settings:
    """How the report decides: the ROPE per metric (a default and overrides), the level and the test."""

    rope: float = DEFAULT_ROPE
    rope_by_metric: tuple[tuple[str, float], ...] = ()
    alpha: float = DEFAULT_ALPHA
    test: str = "t"

    def rope_for(self, metric: str) -> float:
        return dict(self.rope_by_metric).get(metric.removesuffix(" (best)"), self.rope)
