"""Rank-based comparison of many losses over many settings (Demšar 2006) and performance profiles.

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

Performance profiles (Dolan & Moré 2002, Math. Programming 91:201-213), here on the *gap to the best
score* in the metric's own units rather than on the ratio to it (ratios break down for scores that can
be zero or negative and for higher-is-better scores such as accuracy)::

    d[s, j] = |best_s - scores[s, j]|,   rho_j(tau) = #{s : d[s, j] <= tau} / N

where ``best_s`` is the best score of setting ``s`` in the metric's direction. ``rho_j(0)`` is the
fraction of settings on which ``j`` is (jointly) best; ``rho_j`` reaches 1 at the largest gap of ``j``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from scipy import stats  # noqa: E402

FloatArray = npt.NDArray[np.float64]


def _check_scores(scores: npt.ArrayLike) -> FloatArray:
    array = np.asarray(scores, dtype=float)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"scores must be a non-empty [N settings, k variants] matrix, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("scores must be finite (drop or impute settings with missing variants first)")
    return array


def rank_matrix(scores: npt.ArrayLike, higher_is_better: bool) -> FloatArray:
    """Ranks ``[N, k]`` within each setting: 1 = best, ties get the average rank."""
    array = _check_scores(scores)
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
    array = _check_scores(scores)
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


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight" keeps long labels inside the image
    plt.close(fig)
    return path


def cd_diagram(
    names: Sequence[str],
    mean_ranks: npt.ArrayLike,
    cd: float,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Critical-difference diagram PNG: rank axis 1..k, labelled variants, bars for ``nemenyi_groups``."""
    ranks = np.asarray(mean_ranks, dtype=float)
    k = len(ranks)
    if len(names) != k or k < 1:
        raise ValueError(f"got {len(names)} names for {k} mean ranks")
    order = np.argsort(ranks, kind="stable")
    # each bar goes on the first bar row where it clears the previous bar by 0.2 rank units
    bars: list[tuple[float, float, int]] = []
    row_ends: list[float] = []
    for first, last in nemenyi_groups(ranks, cd):
        start, end = ranks[order[first]] - 0.05, ranks[order[last]] + 0.05
        row = next((r for r, row_end in enumerate(row_ends) if row_end + 0.2 < start), len(row_ends))
        row_ends[row : row + 1] = [end]
        bars.append((start, end, row))
    n_left = (k + 1) // 2
    row_height, bar_gap = 0.32, 0.14
    bars_top = 0.25
    rows_top = bars_top + bar_gap * len(row_ends) + 0.25
    bottom = rows_top + row_height * max(n_left, k - n_left)
    pad = max(0.6, 0.06 * (k - 1))  # horizontal run from the axis ends to the labels
    left_x, right_x = 1.0 - pad, max(k, 1.0 + cd) + pad
    top = -1.35 if title is None else -1.8

    fig, ax = plt.subplots(figsize=(min(14.0, 6.0 + 0.3 * k), 0.45 + 0.75 * (bottom - top)))
    ax.set_xlim(left_x - 0.1, right_x + 0.1)
    ax.set_ylim(bottom + 0.1, top)  # y grows downwards
    ax.set_axis_off()
    line = {"color": "black", "linewidth": 0.9}

    # rank axis with integer ticks and labels above it
    ax.plot([1, max(k, 2)], [0, 0], **line)
    for tick in range(1, max(k, 2) + 1):
        ax.plot([tick, tick], [0, -0.12], **line)
        ax.text(tick, -0.17, str(tick), ha="center", va="bottom", fontsize=9)
    for tick in np.arange(1.5, max(k, 2), 1.0):
        ax.plot([tick, tick], [0, -0.06], **line)

    # the critical difference as a segment above the axis
    cd_y = -0.85
    ax.plot([1, 1 + cd], [cd_y, cd_y], color="black", linewidth=1.5)
    for end in (1, 1 + cd):
        ax.plot([end, end], [cd_y - 0.06, cd_y + 0.06], color="black", linewidth=1.5)
    ax.text(1 + cd / 2, cd_y - 0.1, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    if title is not None:
        ax.text((left_x + right_x) / 2, top + 0.05, title, ha="center", va="top", fontsize=11)

    # each variant: a line down from its mean rank, then out to its label; best half on the left
    for position, index in enumerate(order):
        rank = ranks[index]
        if position < n_left:
            row, x_end, ha = position, left_x, "right"
        else:
            row, x_end, ha = k - 1 - position, right_x, "left"
        y = rows_top + row_height * (row + 0.5)
        ax.plot([rank, rank, x_end], [0, y, y], **line)
        label = f"{names[index]} ({rank:.2f})" if ha == "left" else f"({rank:.2f}) {names[index]}"
        ax.text(x_end + (0.08 if ha == "left" else -0.08), y, label, ha=ha, va="center", fontsize=9)

    # thick bars joining the variants the Nemenyi test cannot tell apart
    for start, end, row in bars:
        y = bars_top + bar_gap * (row + 0.5)
        ax.plot([start, end], [y, y], color="black", linewidth=3.5, solid_capstyle="round")

    return _save(fig, path)


def score_gaps(scores: npt.ArrayLike, higher_is_better: bool) -> FloatArray:
    """``[N, k]`` gap of each score to the best score of its setting, >= 0 in the metric's units."""
    array = _check_scores(scores)
    if higher_is_better:
        return array.max(axis=1, keepdims=True) - array
    return array - array.min(axis=1, keepdims=True)


def performance_profile(
    scores: npt.ArrayLike,
    higher_is_better: bool,
    taus: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Performance profiles on the gap to the best: ``fractions[j, t] = #{s : gap[s, j] <= taus[t]} / N``.

    The gap is ``best - score`` for higher-is-better metrics and ``score - best`` for lower-is-better
    ones, so it is always >= 0 and in the metric's units (e.g. accuracy points). By default ``taus``
    are 0 and every distinct gap, so the step function is exact and every profile reaches 1 at the
    last tau; given ``taus`` are sorted, and a profile reaches 1 once tau >= the variant's largest gap.
    Returns ``(taus, fractions)`` with fractions ``[k, len(taus)]``, non-decreasing in tau.
    """
    gaps = score_gaps(scores, higher_is_better)
    if taus is None:
        grid = np.unique(np.concatenate([[0.0], gaps.ravel()]))
    else:
        grid = np.sort(np.asarray(taus, dtype=float).ravel())
        if grid.size == 0 or not np.all(np.isfinite(grid)) or grid[0] < 0:
            raise ValueError("taus must be a non-empty set of finite values >= 0")
    fractions = (gaps[:, :, None] <= grid[None, None, :]).mean(axis=0)
    return grid, fractions


def plot_performance_profiles(
    names: Sequence[str],
    taus: npt.ArrayLike,
    fractions: npt.ArrayLike,
    path: str | Path,
    xlabel: str = "τ: gap to the best score",
    title: str | None = None,
) -> Path:
    """Step plot of the profiles from ``performance_profile`` as a PNG, one line per variant."""
    grid = np.asarray(taus, dtype=float)
    values = np.asarray(fractions, dtype=float)
    if values.shape != (len(names), grid.size):
        raise ValueError(f"fractions has shape {values.shape}, expected {(len(names), grid.size)}")
    colors = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors
    styles = ("-", "--", "-.", ":")
    fig, ax = plt.subplots(figsize=(8.0 if len(names) <= 12 else 9.5, 4.8))
    order = np.argsort(-values.mean(axis=1), kind="stable")  # legend from the best profile down
    for n, index in enumerate(order):
        style = {"color": colors[n % len(colors)], "linestyle": styles[(n // len(colors)) % len(styles)]}
        ax.step(grid, values[index], where="post", label=names[index], linewidth=1.6, **style)
    span = grid[-1] - grid[0] if grid[-1] > grid[0] else 1.0
    ax.set_xlim(grid[0] - 0.01 * span, grid[-1] + 0.03 * span)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of settings")
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    ncol = 1 if len(names) <= 16 else 2
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, ncol=ncol, frameon=False)
    return _save(fig, path)


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
            f"the Nemenyi critical difference is at least k − 1 = {k - 1}, the largest possible "
            f"mean-rank difference, so no two losses can be told apart "
            f"(that needs N ≥ {n_needed} settings)"
        )
    if not problems:
        return None
    head = (
        f"With N = {n} settings and k = {k} losses the ranking is undecidable "
        f"(Nemenyi critical difference CD = {cd:.2f} mean-rank units at α = {alpha:g}): "
    )
    return head + "; ".join(problems) + "."
