"""Expected best validation score against the tuning budget (Dodge et al. 2019, "Show Your Work").

For a loss whose ``N`` trials reached validation scores ``v_(1) <= ... <= v_(N)`` (sorted in the metric's
direction, worst first), the expected best score of ``n <= N`` trials drawn *without* replacement is

    E[max_n] = sum_i v_(i) * C(i - 1, n - 1) / C(N, n)

which is unbiased for a budget of ``n`` of these trials. Dodge et al. draw with replacement
(``sum_i v_(i) [(i/N)^n - ((i-1)/N)^n]``), which Tang et al. 2020 ("Showing Your Work Doesn't Always
Work") show is biased low for ``n`` near ``N``; we use the without-replacement form they propose. Curves of
losses that cross mean that which loss wins depends on the tuning budget.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from lossbench.report.figure_base import legend_outside, save_figure  # noqa: E402


def expected_max(values: list[float], higher_is_better: bool = True) -> np.ndarray:
    """``E[best of n trials]`` for ``n = 1 .. len(values)`` (without replacement, see the module docs)."""
    v = np.sort(np.asarray(values, dtype=float))
    if not higher_is_better:
        v = v[::-1]  # worst (largest) first
    big = len(v)
    out = np.empty(big)
    for n in range(1, big + 1):
        weights = np.array([math.comb(i - 1, n - 1) for i in range(1, big + 1)], dtype=float)
        out[n - 1] = float(weights @ v / math.comb(big, n))
    return out


def _value(curve: np.ndarray, budget: int) -> float:
    """The curve at ``budget`` trials (1-based); a shorter curve keeps its last value."""
    return float(curve[min(budget, len(curve)) - 1])


def _order(curves: dict[str, np.ndarray], higher_is_better: bool, budget: int) -> str:
    """The losses' order at ``budget`` trials, best first (``"a > b = c"``); equal to 12 digits is a tie."""
    sign = -1.0 if higher_is_better else 1.0
    names = sorted(curves)
    ranks = rankdata([round(sign * _value(curves[k], budget), 12) for k in names], method="min")
    text, last = "", None
    for rank, name in sorted(zip(ranks, names, strict=True)):
        text += name if last is None else (" = " if rank == last else " > ") + name
        last = rank
    return text


def full_budget(curves: dict[str, np.ndarray]) -> int:
    return max((len(c) for c in curves.values()), default=0)


def ranking_changes(curves: dict[str, np.ndarray], higher_is_better: bool) -> tuple[str, str] | None:
    """The losses' order at a budget of one trial and at the full budget (``"a > b = c"``), when they
    differ; losses with equal expected scores share a rank. :func:`orders_by_budget` checks every budget."""
    if len(curves) < 2:
        return None
    first, last = (_order(curves, higher_is_better, n) for n in (1, full_budget(curves)))
    return (first, last) if first != last else None


def orders_by_budget(curves: dict[str, np.ndarray], higher_is_better: bool) -> list[tuple[int, int, str]]:
    """The order at every budget from 1 trial to the full one, as runs ``(first, last budget, order)``:
    one run when the ranking never changes."""
    runs: list[tuple[int, int, str]] = []
    for n in range(1, full_budget(curves) + 1):
        order = _order(curves, higher_is_better, n)
        if runs and runs[-1][2] == order:
            runs[-1] = (runs[-1][0], n, order)
        else:
            runs.append((n, n, order))
    return runs


def crossings(curves: dict[str, np.ndarray], higher_is_better: bool) -> list[tuple[int, str, str]]:
    """Every budget at which one loss's curve overtakes another's: ``(budget, leader, overtaken)``, where
    ``leader`` is strictly better at ``budget`` and ``overtaken`` was strictly better at the last budget
    where they differed (touching without changing sides is no crossing)."""
    sign = 1.0 if higher_is_better else -1.0
    out = []
    names = sorted(curves)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            last = 0.0
            for n in range(1, full_budget(curves) + 1):
                d = round(sign * (_value(curves[a], n) - _value(curves[b], n)), 12)
                if d != 0 and last != 0 and np.sign(d) != np.sign(last):
                    out.append((n, a, b) if d > 0 else (n, b, a))
                last = d if d != 0 else last
    return sorted(out)


def ranking_text(curves: dict[str, np.ndarray], higher_is_better: bool) -> str:
    """What the curves say about the ranking, checked at every budget."""
    budget = full_budget(curves)
    runs = orders_by_budget(curves, higher_is_better)
    if len(curves) < 2:
        return ""
    if len(runs) == 1:
        return (
            f" The ranking of the losses is the same at every budget from 1 to {budget} trials: {runs[0][2]}."
        )
    cross = crossings(curves, higher_is_better)
    text = ""
    if cross:
        at = sorted({n for n, _, _ in cross})
        text += f" The curves cross at {_budgets(at)}: " + "; ".join(
            f"{leader} overtakes {other} at {n} trial{'s' if n > 1 else ''}" for n, leader, other in cross
        )
        text += "."
    spans = "; ".join(f"{_trials(first, last)}: {order}" for first, last, order in runs)
    return (
        text
        + f" The ranking changes with the budget — {spans}. A comparison at a single budget would depend "
        "on that choice."
    )


def _trials(first: int, last: int) -> str:
    return f"{first} trial{'s' if first > 1 else ''}" if first == last else f"{first}–{last} trials"


def _budgets(at: list[int]) -> str:
    words = [str(n) for n in at]
    joined = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"{joined} trial{'s' if len(at) > 1 or at[0] > 1 else ''}"


def plot(curves: dict[str, np.ndarray], metric: str, path: Path) -> Path:
    """The expected-best curves, one line per loss, the legend outside the axes."""
    fig, ax = plt.subplots(figsize=(7.6, 4.0))
    for name, curve in sorted(curves.items()):
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=name)
    ax.set_xlabel("tuning budget: trials")
    ax.set_ylabel(f"expected best {metric}")
    ax.set_title("expected best validation score vs budget (without replacement)")
    ax.grid(alpha=0.3)
    legend_outside(ax, fontsize=8)
    return save_figure(fig, path)


def section(curves: dict[str, np.ndarray], metric: str, higher_is_better: bool, png: Path | None):
    """Markdown lines and HTML parts of the report's tuning-budget section."""
    runs = orders_by_budget(curves, higher_is_better)
    text = (
        f"Expected best {metric} against the number of trials, per loss (Dodge et al. 2019, computed without "
        "replacement as Tang et al. 2020 recommend, which removes the with-replacement estimator's bias)."
    )
    text += ranking_text(curves, higher_is_better)
    rows = [
        [
            name,
            f"{curve[0]:.4f}",
            f"{curve[(len(curve) + 1) // 2 - 1]:.4f}",
            f"{curve[-1]:.4f}",
            str(len(curve)),
        ]
        for name, curve in sorted(curves.items())
    ]
    header = ["loss", "1 trial", "half the budget", "full budget", "trials"]
    md = ["## Tuning budget", "", text, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    esc = html.escape
    parts = ["<h2>Tuning budget</h2>", f"<p>{esc(text)}</p>", "<table><thead><tr>"]
    parts.append("".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
    parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows]
    parts.append("</tbody></table>")
    if png is not None:
        md += ["", f"![{png.stem}]({png.name})"]
    return md, parts, runs if len(runs) > 1 else None
