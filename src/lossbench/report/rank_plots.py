"""The rank figures of :mod:`.ranks`: the critical-difference diagram, and performance profiles.

Performance profiles (Dolan & Moré 2002, Math. Programming 91:201-213), here on the *gap to the best
score* in the metric's own units rather than on the ratio to it (ratios break down for scores that can
be zero or negative and for higher-is-better scores such as accuracy)::

    d[s, j] = |best_s - scores[s, j]|,   rho_j(tau) = #{s : d[s, j] <= tau} / N

where ``best_s`` is the best score of setting ``s`` in the metric's direction. ``rho_j(0)`` is the
fraction of settings on which ``j`` is (jointly) best; ``rho_j`` reaches 1 at the largest gap of ``j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from lossbench.report.ranks import FloatArray, check_scores, nemenyi_groups  # noqa: E402


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
    array = check_scores(scores)
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
