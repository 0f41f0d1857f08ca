"""Rank-based comparison of many losses over many settings (Demšar 2006); figures in :mod:`.rank_plots`.

The input is a score matrix ``scores[N, k]``: one number per setting (dataset, model, stressor, ...)
and loss variant, e.g. the mean test accuracy over seeds. ``higher_is_better`` gives the direction.

Ranks. Within each setting the variants are ranked 1 (best) .. k, ties get the average of the ranks
they span; ``R_j`` is the mean rank of variant ``j`` over the N settings.

Friedman test (Friedman 1937, as in Demšar 2006, JMLR 7:1-30, eq. 1)::

    chi2_F = 12 N / (k (k + 1)) * (sum_j R_j^2 - k (k + 1)^2 / 4)      (chi-squared, k - 1 d.o.f.)

computed by ``scipy.stats.friedmanchisquare``, which also corrects for ties. Its Iman & Davenport
(1980) refinement (Demšar eq. 2)::

    F_F = (N - 1) chi2_F / (N (k - 1) - chi2_F)      (F distribution, k - 1 and (k - 1)(N - 1) d.o.f.)

The decision (does any variant differ?) is Friedman's χ² test, and so is the note that N settings are too
few to decide (:func:`undecidable_note`). Iman–Davenport's F is computed but not used: with few settings it
rejects far more often than α when nothing differs (simulated on uniform scores: 17% at N = 2, 19% at
N = 3, k = 3; χ²: 0% and 3%), and the report usually compares 2–5 settings.

Nemenyi post-hoc test (Nemenyi 1963; Demšar section 3.2.2): two variants differ significantly when
their mean ranks differ by more than the critical difference::

    CD = q_alpha * sqrt(k (k + 1) / (6 N)),   q_alpha = studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)

(q_0.05 = 1.960, 2.343, 2.569, ... for k = 2, 3, 4, ...: Demšar's Table 5). A critical-difference
diagram draws the mean ranks on an axis and joins with a thick bar each maximal group of variants
that the test cannot tell apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]


def check_scores(scores: npt.ArrayLike) -> FloatArray:
    array = np.asarray(scores, dtype=float)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"scores must be a non-empty [N settings, k variants] matrix, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("scores must be finite (drop or impute settings with missing variants first)")
    return array


def rank_matrix(scores: npt.ArrayLike, higher_is_better: bool) -> FloatArray:
    """Ranks ``[N, k]`` within each setting: 1 = best, ties get the average rank."""
    array = check_scores(scores)
    return stats.rankdata(-array if higher_is_better else array, method="average", axis=1)


def mean_ranks(scores: npt.ArrayLike, higher_is_better: bool) -> FloatArray:
    """Mean rank ``[k]`` of each variant over the settings (1 = best on every setting)."""
    return rank_matrix(scores, higher_is_better).mean(axis=0)


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test and its Iman–Davenport F form; NaN statistics with ``reason`` when undefined."""

    statistic: float  # chi2_F (tie-corrected)
    p_value: float
    iman_davenport: float  # F_F
    iman_davenport_p: float
    n_settings: int
    k: int
    mean_ranks: tuple[float, ...]
    reason: str | None = None  # why the test was not computed; None when it was

    def rejects(self, alpha: float) -> bool:
        """The decision: Friedman's χ² p-value below ``alpha`` (the module docs say why not F_F)."""
        return self.reason is None and self.p_value < alpha


def friedman(scores: npt.ArrayLike, higher_is_better: bool) -> FriedmanResult:
    """Friedman chi² (as ``scipy.stats.friedmanchisquare(*scores.T)``) and the Iman–Davenport F test."""
    array = check_scores(scores)
    n, k = array.shape
    ranks = tuple(float(r) for r in mean_ranks(array, higher_is_better))
    reason = None
    if k < 3:
        reason = f"the Friedman test needs at least 3 variants, got k = {k}"
    elif n < 2:
        reason = f"the Friedman test needs at least 2 settings, got N = {n}"
    elif np.all(array == array[:, :1]):
        reason = "every setting ties all variants"
    if reason is not None:
        return FriedmanResult(math.nan, math.nan, math.nan, math.nan, n, k, ranks, reason)
    chi2, p_value = stats.friedmanchisquare(*array.T)
    chi2, p_value = float(chi2), float(p_value)
    denominator = n * (k - 1) - chi2
    if denominator <= 1e-9 * n * (k - 1):  # every setting ranks the variants identically
        f_stat, f_p = math.inf, 0.0
    else:
        f_stat = (n - 1) * chi2 / denominator
        f_p = float(stats.f.sf(f_stat, k - 1, (k - 1) * (n - 1)))
    return FriedmanResult(chi2, p_value, float(f_stat), f_p, n, k, ranks)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test for k variants (Demšar's Table 5)."""
    if k < 2:
        raise ValueError(f"the Nemenyi test needs at least 2 variants, got k = {k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n_settings: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference in mean-rank units: q_alpha * sqrt(k (k + 1) / (6 N))."""
    if n_settings < 1:
        raise ValueError(f"need at least 1 setting, got N = {n_settings}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_settings))


def nemenyi_significant(mean_ranks: npt.ArrayLike, cd: float) -> npt.NDArray[np.bool_]:
    """``[k, k]`` matrix: True where two variants' mean ranks differ by more than ``cd``."""
    ranks = np.asarray(mean_ranks, dtype=float)
    return np.abs(ranks[:, None] - ranks[None, :]) > cd


def nemenyi_groups(mean_ranks: npt.ArrayLike, cd: float) -> list[tuple[int, int]]:
    """Maximal groups of at least two variants whose mean ranks all lie within ``cd`` of each other.

    Each group is an inclusive range ``(first, last)`` of positions in rank order, i.e. into
    ``np.argsort(mean_ranks, kind="stable")``; these are the bars of a critical-difference diagram.
    Within a group no pair differs significantly (``|R_i - R_j| <= cd``); a variant that differs from
    all others belongs to no group.
    """
    ranks = np.sort(np.asarray(mean_ranks, dtype=float), kind="stable")
    groups: list[tuple[int, int]] = []
    previous_last = -1
    for first in range(len(ranks)):
        last = int(np.searchsorted(ranks, ranks[first] + cd, side="right")) - 1
        if last > first and last > previous_last:
            groups.append((first, last))
        previous_last = max(previous_last, last)
    return groups


def undecidable_note(friedman_result: FriedmanResult, cd: float, k: int, alpha: float = 0.05) -> str | None:
    """A plain-words sentence when N settings are too few for the tests to separate k variants, else None.

    Two checks: even if every setting ranked the variants identically (the largest statistic,
    chi2_F = N (k - 1)), the Friedman χ² p-value — the test :meth:`FriedmanResult.rejects` decides
    with — would stay >= alpha; or CD >= k - 1, the largest possible
    mean-rank difference, so the Nemenyi test can never tell two variants apart. ``alpha`` is the
    level of both tests and the one ``cd`` was computed at.
    """
    n = friedman_result.n_settings
    if k < 2 or n < 1:
        return None  # nothing to compare
    problems = []
    best_p = float(stats.chi2.sf(n * (k - 1), k - 1))
    if best_p >= alpha:
        problems.append(
            f"even if every setting ranked the losses identically the Friedman p-value would be "
            f"{best_p:.3g}, not below α = {alpha:g}"
        )
    if cd >= k - 1:
        # smallest N with CD < k - 1
        n_needed = math.floor(nemenyi_q(k, alpha) ** 2 * k * (k + 1) / (6.0 * (k - 1) ** 2)) + 1
        problems.append(
            f"CD ≥ k − 1 = {k - 1}, the largest possible mean-rank difference, so the Nemenyi test "
            f"can tell no two losses apart "
            f"(that needs N ≥ {n_needed} settings)"
        )
    if not problems:
        return None
    head = (
        f"With N = {n} settings and k = {k} losses the ranking is undecidable "
        f"(Nemenyi critical difference CD = {cd:.2f} mean-rank units at α = {alpha:g}): "
    )
    return head + "; ".join(problems) + "."
