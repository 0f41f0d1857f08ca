"""The report's across-settings section: mean ranks, Friedman + Nemenyi, CD diagrams, performance profiles.

When a report holds several settings (data sets, stressor levels, several sweep directories), each metric
gets a matrix ``settings × variants`` of per-setting means (variants present in every setting only), and
:mod:`lossbench.report.ranks` compares the variants over the settings (Demšar 2006): Friedman's χ² test
decides, and the note on too few settings argues from the same test.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lossbench.report import rank_plots, ranks
from lossbench.report.figure_base import slug
from lossbench.report.stats import Row


@dataclass
class MetricRanks:
    """One metric over the settings: the variants compared, their mean ranks and the tests."""

    metric: str
    higher_is_better: bool
    settings: list[str]
    variants: list[str]
    scores: np.ndarray  # [settings, variants], per-setting means
    mean_ranks: np.ndarray
    friedman: ranks.FriedmanResult
    cd: float
    note: str | None
    alpha: float = 0.05
    left_out: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


def metric_ranks(rows: list[Row], alpha: float = 0.05) -> list[MetricRanks]:
    """One :class:`MetricRanks` per metric present in at least two settings with at least two variants."""
    out = []
    for metric in sorted({r.metric for r in rows}):
        cells = [r for r in rows if r.metric == metric and not math.isnan(r.mean)]
        settings = sorted({r.group for r in cells})
        if len(settings) < 2:
            continue
        per_setting = [{r.variant for r in cells if r.group == g} for g in settings]
        common = sorted(set.intersection(*per_setting))
        if len(common) < 2:
            continue
        means = {(r.group, r.variant): r.mean for r in cells}
        scores = np.array([[means[(g, v)] for v in common] for g in settings])
        hib = cells[0].higher_is_better
        result = ranks.friedman(scores, hib)
        cd = ranks.nemenyi_cd(len(common), len(settings), alpha)
        out.append(
            MetricRanks(
                metric,
                hib,
                settings,
                common,
                scores,
                ranks.mean_ranks(scores, hib),
                result,
                cd,
                None if result.reason else ranks.undecidable_note(result, cd, len(common), alpha),
                alpha=alpha,
                left_out=sorted(set.union(*per_setting) - set(common)),
            )
        )
    return out


def make_figures(results: list[MetricRanks], out_dir: Path) -> None:
    """A CD diagram and a performance-profile plot per metric, into ``out_dir``."""
    for m in results:
        name = slug(m.metric)
        if not m.friedman.reason and not m.note:  # a CD diagram of variants no test can tell apart: none
            m.figures.append(cd_figure(m, out_dir / f"cd_{name}.png"))
        taus, fractions = rank_plots.performance_profile(m.scores, m.higher_is_better)
        m.figures.append(
            rank_plots.plot_performance_profiles(
                m.variants,
                taus,
                fractions,
                out_dir / f"profile_{name}.png",
                xlabel=f"τ: gap to the best {m.metric} of the setting",
                title=f"performance profile, {m.metric}",
            )
        )


def cd_figure(m: MetricRanks, path: Path) -> Path:
    return rank_plots.cd_diagram(
        m.variants,
        m.mean_ranks,
        m.cd,
        path,
        title=f"{m.metric}: mean rank over {len(m.settings)} settings (Nemenyi CD)",
    )


def shared_text(results: list[MetricRanks]) -> str:
    """What every metric's test text would say alike (the settings and variants are too few for the tests,
    which depends on N and k only), said once above the metrics; "" when it differs between them."""
    texts = {_limits(m) for m in results}
    return texts.pop() if len(texts) == 1 else ""


def _limits(m: MetricRanks) -> str:
    if m.friedman.reason:
        return f"Friedman test not applicable: {m.friedman.reason}."
    return m.note or ""


def _test_text(m: MetricRanks, shared: str = "") -> str:
    f = m.friedman
    if f.reason:
        text = "" if shared else _limits(m)
    else:
        text = (
            f"Friedman χ² = {f.statistic:.2f}, p = {f.p_value:.4g}; Nemenyi CD = {m.cd:.2f} ranks at "
            f"α = {m.alpha:g}."
        )
    if not f.reason and not f.rejects(m.alpha):
        drawn = " (the CD diagram shows the mean ranks for scale only)" if not m.note else ""
        text += f" The Friedman test does not reject: no pair of losses is told apart{drawn}."
    if m.note and not shared:
        text += " " + m.note
    if m.left_out:
        text += f" Not in every setting, so not ranked: {', '.join(m.left_out)}."
    return text.strip()


def _table(m: MetricRanks) -> tuple[list[str], list[list[str]]]:
    order = np.argsort(m.mean_ranks, kind="stable")
    best = m.mean_ranks[order[0]]
    header = ["variant", "mean rank", f"mean {m.metric} over settings", "vs best"]
    body = []
    for j in order:
        # the post-hoc test only after the Friedman test rejects (Demšar 2006)
        rejected = m.friedman.rejects(m.alpha)
        apart = rejected and m.mean_ranks[j] - best > m.cd
        body.append(
            [
                m.variants[j],
                f"{m.mean_ranks[j]:.2f}",
                f"{np.mean(m.scores[:, j]):.4f}",
                "best" if m.mean_ranks[j] == best else "worse (Nemenyi)" if apart else "indistinguishable",
            ]
        )
    return header, body


def markdown(results: list[MetricRanks]) -> list[str]:
    if not results:
        return []
    lines = ["## Across settings", ""]
    shared = shared_text(results)
    if shared:
        lines += [shared, ""]
    for m in results:
        arrow = "↑" if m.higher_is_better else "↓"
        header, body = _table(m)
        lines += [f"### {m.metric} {arrow} over {len(m.settings)} settings", ""]
        lines += [text, ""] if (text := _test_text(m, shared)) else []
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        lines += [f"\n![{p.stem}]({p.name})" for p in m.figures]
        lines.append("")
    return lines


def html_parts(results: list[MetricRanks], embed) -> list[str]:
    """HTML for the section; ``embed(path)`` returns an ``<img>`` tag for a figure."""
    if not results:
        return []
    esc = html.escape
    parts = ["<h2>Across settings</h2>"]
    shared = shared_text(results)
    if shared:
        parts.append(f"<p>{esc(shared)}</p>")
    for m in results:
        header, body = _table(m)
        arrow = "↑" if m.higher_is_better else "↓"
        parts.append(f"<h3>{esc(m.metric)} {arrow} over {len(m.settings)} settings</h3>")
        parts.append(f'<p>{esc(_test_text(m, shared))}</p><table class="ranks"><thead><tr>')
        parts.append("".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</tbody></table>")
        parts += [embed(p) for p in m.figures]
    return parts
