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


def ranking_changes(curves: dict[str, np.ndarray], higher_is_better: bool) -> tuple[str, str] | None:
    """The losses' order at a budget of one trial and at the full budget (``"a > b = c"``), when the ranks
    differ; losses with equal expected scores share a rank."""
    if len(curves) < 2:
        return None
    sign = -1.0 if higher_is_better else 1.0
    names = sorted(curves)

    def ranks(at: int) -> np.ndarray:
        values = [round(sign * curves[k][min(at, len(curves[k]) - 1)], 12) for k in names]
        return rankdata(values, method="min")

    def order(r: np.ndarray) -> str:
        text, last = "", None
        for rank, name in sorted(zip(r, names, strict=True)):
            text += name if last is None else (" = " if rank == last else " > ") + name
            last = rank
        return text

    first, last = ranks(0), ranks(max(len(c) for c in curves.values()) - 1)
    return (order(first), order(last)) if not np.array_equal(first, last) else None


def plot(curves: dict[str, np.ndarray], metric: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, curve in sorted(curves.items()):
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=name)
    ax.set_xlabel("tuning budget: trials")
    ax.set_ylabel(f"expected best {metric}")
    ax.set_title("expected best validation score vs budget (without replacement)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def section(curves: dict[str, np.ndarray], metric: str, higher_is_better: bool, png: Path | None):
    """Markdown lines and HTML parts of the report's tuning-budget section."""
    change = ranking_changes(curves, higher_is_better)
    budget = max((len(c) for c in curves.values()), default=0)
    text = (
        f"Expected best {metric} against the number of trials, per loss (Dodge et al. 2019, computed without "
        "replacement as Tang et al. 2020 recommend, which removes the with-replacement estimator's bias)."
    )
    if change:
        text += (
            f" The ranking changes with the budget: with 1 trial {change[0]}; with {budget} trials "
            f"{change[1]}. A comparison at a single budget would depend on that choice."
        )
    else:
        text += " The ranking of the losses is the same at every budget from 1 trial to the full one."
    rows = [
        [name, f"{curve[0]:.4f}", f"{curve[len(curve) // 2]:.4f}", f"{curve[-1]:.4f}", str(len(curve))]
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
    return md, parts, change
