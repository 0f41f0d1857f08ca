"""Confidence intervals of a variant's mean, of its interquartile mean, and of a mean paired difference.

All intervals are analytic, not percentile-bootstrap: with 3–10 replicates a percentile bootstrap sees
only the spread the sample shows and covers about 85% at a nominal 95%.

* **mean** and **mean paired difference** — Student's t-interval ``x̄ ± t_{n−1} · s / √n``;
* **paired difference under the Wilcoxon signed-rank test** — the Hodges–Lehmann estimate (the median of
  the ``M = n (n + 1) / 2`` Walsh averages ``(d_i + d_j) / 2, i ≤ j``) with the distribution-free interval
  that inverts the test (Hollander & Wolfe, *Nonparametric Statistical Methods*, §3.3):
  ``[W_(k), W_(M+1−k)]`` of the sorted Walsh averages, ``k`` the largest with ``P(T⁺ ≤ k − 1) ≤ α / 2``
  under the signed-rank statistic's null distribution (exact up to 50 differences, normal beyond, as
  ``scipy.stats.wilcoxon`` tests). Zero differences are left out, as the test leaves them out
  (``zero_method="wilcox"``); with tied differences ``k`` comes from the tie-corrected normal variance.
  Exact for continuous differences; with ties (an accuracy moves in steps of one test sample) it is
  approximate, and can reach 0 where the test, exact over the tied ranks, just rejects;
* **IQM** (interquartile mean, the 25%-trimmed mean ``scipy.stats.trim_mean(x, 0.25)`` of rliable,
  Agarwal et al. 2021) — the Tukey–McLaughlin / Yuen (1974) interval for a trimmed mean: with
  ``g = ⌊0.25 n⌋`` values trimmed at each end and ``h = n − 2g`` kept,
  ``x̄_t ± t_{h−1} · c_n · sqrt(SSD_w / (h (h − 1)))`` where ``SSD_w`` is the sum of squared deviations of
  the winsorized sample. ``c_n = sqrt((n + 1) / (n − 1))`` is a small-sample inflation: Yuen's interval
  alone covers 93.5–94.5% under normal noise at 4–30 replicates; with it 95–96% (t₃ noise: 95–97%; 40,000
  simulations each), as ``scripts/validate_stats.py`` checks. With 3 replicates nothing is trimmed and it
  is the t-interval.

An interval needs at least 2 values and some spread: for fewer values, or values that are all equal (for
the IQM: a winsorized sample that is all equal, as when the ``h`` values it keeps tie), the bounds are
NaN (a zero-width "95% interval" would claim certainty that the replicates cannot give).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

#: up to this many differences the signed-rank statistic's null distribution is exact (scipy's threshold)
EXACT_SIGNED_RANK = 50

#: the level of every interval the report labels "95%"
LEVEL = 0.95
#: share trimmed at each end for the interquartile mean
TRIM = 0.25


def _no_spread(x: np.ndarray) -> np.ndarray:
    """Per row: True when all values are equal up to float noise relative to their size."""
    scale = np.maximum(np.abs(x).max(axis=1), 1e-12)
    return np.ptp(x, axis=1) <= 1e-9 * scale


def t_interval(values: npt.ArrayLike, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Student's t-interval of the mean per row of ``values`` ``[m, n]`` (NaN for n < 2 or no spread)."""
    x = np.atleast_2d(np.asarray(values, dtype=float))
    m, n = x.shape
    if n < 2:
        return np.full(m, np.nan), np.full(m, np.nan)
    mean = x.mean(axis=1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=1, ddof=1) / math.sqrt(n)
    half[_no_spread(x)] = np.nan
    return mean - half, mean + half


def trimmed_mean_interval(values: npt.ArrayLike, level: float = LEVEL) -> tuple[float, float, float]:
    """The interquartile mean of ``values`` and its interval (module docs); NaN bounds for n < 2."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    iqm = float(stats.trim_mean(x, TRIM))
    if n < 2:
        return iqm, math.nan, math.nan
    g = int(TRIM * n)
    h = n - 2 * g
    if g == 0:
        lo, hi = t_interval(x[None], level)
        return iqm, float(lo[0]), float(hi[0])
    winsorized = np.clip(x, x[g], x[n - g - 1])
    if _no_spread(winsorized[None])[0]:  # also every sample without spread
        return iqm, math.nan, math.nan
    ssd = float(((winsorized - winsorized.mean()) ** 2).sum())
    se = math.sqrt((n + 1) / (n - 1)) * math.sqrt(ssd / (h * (h - 1)))
    half = float(stats.t.ppf(0.5 + level / 2, h - 1)) * se
    return iqm, iqm - half, iqm + half


def estimates(
    values: npt.ArrayLike, level: float = LEVEL, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, float]:
    """Mean and interquartile mean of ``values`` with their intervals (``ci_*`` and ``iqm_*``), each cut
    to ``bounds``, the values the metric can take (an accuracy's t-interval [0.95, 1.03] reads [0.95, 1]):
    the true mean lies within them, so the cut interval covers it whenever the whole one does."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if len(x) else math.nan
    lo, hi = t_interval(x[None], level)
    iqm, iqm_lo, iqm_hi = trimmed_mean_interval(x, level)
    low, high = bounds
    return {
        "mean": mean,
        "ci_low": max(float(lo[0]), low),
        "ci_high": min(float(hi[0]), high),
        "iqm": iqm,
        "iqm_low": max(iqm_lo, low),
        "iqm_high": min(iqm_hi, high),
    }


def signed_rank_cdf(n: int) -> np.ndarray:
    """``P(T⁺ ≤ t)`` for ``t = 0 … n (n + 1) / 2`` when no difference of ``n`` has a sign preference:
    the number of subsets of the ranks ``1 … n`` summing to ``t``, over ``2ⁿ`` (exact in float64 to
    n = 50)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank]  # the right side is evaluated before assigning
    return np.cumsum(counts) / 2.0**n


def nonzero_walsh_averages(values: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero differences of ``values`` (all of them when every one is zero: the test leaves zero
    differences out, as they carry no sign) and their sorted Walsh averages ``(d_i + d_j) / 2, i <= j``."""
    x = np.asarray(values, dtype=float)
    x = x[x != 0] if (x != 0).any() else x
    i, j = np.triu_indices(len(x))
    return x, np.sort((x[i] + x[j]) / 2)


def hodges_lehmann(values: npt.ArrayLike) -> float:
    """The median of :func:`nonzero_walsh_averages` (NaN for no values)."""
    walsh = nonzero_walsh_averages(values)[1]
    return float(np.median(walsh)) if len(walsh) else math.nan


def walsh_interval(values: npt.ArrayLike, level: float = LEVEL) -> tuple[float, float, float]:
    """The Hodges–Lehmann estimate of paired differences ``values`` and its signed-rank interval (module
    docs); NaN bounds for fewer than 2 values, no spread, or too few values for ``level`` (up to 5 at 95%:
    even the widest interval, the smallest to the largest value, covers only ``1 − 2⁻ⁿ⁺¹``)."""
    x, walsh = nonzero_walsh_averages(values)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    estimate = float(np.median(walsh))
    if n < 2 or _no_spread(x[None])[0]:
        return estimate, math.nan, math.nan
    m, tail = len(walsh), (1 - level) / 2
    _, ties = np.unique(np.abs(x), return_counts=True)
    if n <= EXACT_SIGNED_RANK and (ties == 1).all():
        k = int(np.searchsorted(signed_rank_cdf(n), tail, side="right"))  # P(T+ <= k - 1) <= tail
    else:  # scipy's normal approximation: tie-corrected variance, no continuity term
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - float((ties**3 - ties).sum()) / 48)
        k = math.floor(m / 2 - float(stats.norm.ppf(1 - tail)) * sd) + 1
    if k < 1:
        return estimate, math.nan, math.nan
    return estimate, float(walsh[k - 1]), float(walsh[m - k])
