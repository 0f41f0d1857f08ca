"""Write ``report.csv``, ``report.md`` and a self-contained ``report.html`` (plots embedded as data URIs)."""

from __future__ import annotations

import base64
import csv
import html
import math
from dataclasses import fields
from pathlib import Path

from lossbench.report import markdown
from lossbench.report.collect import PILOT_NOTE, SUPERSEDED, TRIAL, ReportRun
from lossbench.report.notes import setting_notes
from lossbench.report.stats import Row, setting_label, stands_out


def fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


def cell(row: Row) -> str:
    """``mean ± std [95% t-interval low, high]``."""
    text = f"{fmt(row.mean)} ± {fmt(row.std)}"
    if not math.isnan(row.ci_low):
        text += f" [{fmt(row.ci_low)}, {fmt(row.ci_high)}]"
    return text


def interval(x: float, lo: float, hi: float, digits: int = 4, signed: bool | None = None) -> str:
    """``x [lo, hi]``, signed for 4-digit differences unless ``signed`` says otherwise."""
    if x is None or math.isnan(x):
        return "—"
    sign = "+" if (digits == 4 if signed is None else signed) else ""
    text = f"{x:{sign}.{digits}f}"
    return text if math.isnan(lo) else f"{text} [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]"


def write_csv(rows: list[Row], path: Path) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Row)])
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_dict())
    return path


HEADER = (
    "variant",
    "metric",
    "mean ± std [95% CI]",
    "IQM [95% CI]",
    "n",
    "rank",
    "Δ vs baseline [95% CI]",
    "P(improvement) [95% CI]",
    "p (Holm)",
    "verdict",
)

#: what each number is, said once above the tables (``{tost}``: the interval TOST's verdict reads at one
#: comparison, :func:`legend`)
LEGEND = (
    "Per variant × metric: mean ± sample std over replicates with the 95% t-interval of the mean; IQM = "
    "interquartile mean with its 95% trimmed-mean (Yuen) interval; n replicates; rank by mean (1 = best, "
    "ties share a rank; ↑ higher / ↓ lower is better); **bold** = the best group: the top-ranked variant and "
    "every variant not shown worse than it by paired tests Holm-adjusted over every pair of variants (nor by "
    "the verdicts against the baseline), shown only when it leaves some variant out. Against the baseline: Δ "
    "= variant − baseline over the paired replicates, their mean with its 95% t-interval (`--test wilcoxon`: "
    "their Hodges–Lehmann estimate, the median of the Walsh averages, with the 95% interval of the "
    "signed-rank test); P(improvement) = the chance that a run of the variant beats a run of the baseline, "
    "every run against every run of another seed (of the same data split, where the two ran on different "
    "splits), ties ½ (Agarwal et al. 2021), with "
    "its 95% score interval (the paired win share is in report.csv); the Holm-adjusted p-value of the "
    "difference test, and the verdict (*equivalent* comes from the two one-sided tests, Holm-adjusted as the "
    "difference test: with one comparison, the {tost} interval, not the 95% one shown, within the ROPE; with "
    "several, a wider one). A verdict needs at least 3 paired replicates (else *undecided (too few "
    "replicates)*) whose differences vary (else *identical runs*, or *constant difference* when the same "
    "non-zero Δ repeats: the seeds changed neither result); none of these gets a p-value, and an untestable "
    "comparison does not take a variant out of the best group. A value without [low, high] has no interval "
    "(fewer than 2 values, or no spread; for the IQM, the values it keeps all tie); — = no value. "
    "`test/loss` is left out: its scale differs per loss; interval coverage is in the calibration figure, "
    "interval widths and the fitted temperature in each run's metrics.json."
)


def legend(alpha: float) -> str:
    """:data:`LEGEND` at significance level ``alpha``: two one-sided tests at ``alpha`` each find
    equivalence when the ``1 − 2·alpha`` interval of Δ lies within the ROPE."""
    return LEGEND.format(tost=f"{100 * (1 - 2 * alpha):.4g}%")


def _table_rows(rows: list[Row], group: str) -> list[tuple[bool, list[str]]]:
    """Each row of ``group``'s table: whether it is highlighted (:func:`stands_out`), and its cells."""
    mine = [r for r in rows if r.group == group]
    out = []
    for row in sorted(mine, key=lambda r: (r.metric, r.rank, r.variant)):
        highlight = row.variant in stands_out([r for r in mine if r.metric == row.metric])
        arrow = "↑" if row.higher_is_better else "↓"
        is_base = row.variant == row.baseline
        diff = "baseline" if is_base else interval(row.diff_vs_baseline, row.diff_low, row.diff_high)
        pi = (
            ""
            if is_base
            else interval(row.prob_improvement, row.prob_improvement_low, row.prob_improvement_high, digits=2)
        )
        p = "" if is_base else fmt_p(row.p_holm)
        out.append(
            (
                highlight,
                [
                    row.variant,
                    f"{row.metric} {arrow}",
                    cell(row),
                    interval(row.iqm, row.iqm_low, row.iqm_high, digits=4, signed=False),
                    str(row.n),
                    str(row.rank),
                    diff,
                    pi,
                    p,
                    "" if is_base else row.verdict,
                ],
            )
        )
    return out


def problems(runs: list[ReportRun]) -> list[ReportRun]:
    """The runs left out of the statistics, and those with a metric left out of them (not the tuning
    trials, which :func:`counts` counts)."""
    return [r for r in runs if (not r.ok or r.partly_counted) and r.status != TRIAL]


def counts(runs: list[ReportRun]) -> str:
    """``12 runs, 6 ok, 1 failed or missing, 5 duplicates`` (duplicates named apart: they did finish; so are
    failed or stopped starts that another run finished, ``superseded``)."""
    ok, duplicates = sum(r.ok for r in runs), sum(r.status == "duplicate" for r in runs)
    superseded, trials = sum(r.status == SUPERSEDED for r in runs), sum(r.status == TRIAL for r in runs)
    text = f"{len(runs)} runs, {ok} ok, {len(runs) - ok - duplicates - superseded - trials} failed or missing"
    text += f", {duplicates} duplicates" if duplicates else ""
    pilots = sum(r.status == TRIAL and r.error == PILOT_NOTE for r in runs)
    searched = f"{trials - pilots} tuning trials" + (" and advise's pilot" if pilots else "")
    text += f", {searched} (not compared: each loss's final runs are)" if trials else ""
    return text + (f", {superseded} superseded" if superseded else "")


def status(run: ReportRun) -> str:
    return "partly counted" if run.partly_counted else run.status


def write_markdown(
    rows: list[Row],
    runs: list[ReportRun],
    plots: dict[str, list[Path]],
    path: Path,
    source: str,
    verdict: list[str] | None = None,
    across: list[str] | None = None,
    lead: list[str] | None = None,
    alpha: float = 0.05,
) -> Path:
    lines = [
        "# lossbench comparison report",
        "",
        f"Source: `{source}` — {counts(runs)}.",
        "",
        *(lead or []),
    ]
    if verdict:
        lines += ["", "## Verdict", "", *[f"- {v}" for v in verdict[:-1]], "", verdict[-1]]
    lines += ["", legend(alpha)]
    for group in sorted({r.group for r in rows}):
        base = next(r.baseline for r in rows if r.group == group)
        lines += ["", f"## {group} (baseline: {base})", "", "| " + " | ".join(HEADER) + " |"]
        lines.append("|" + "|".join(["---"] * len(HEADER)) + "|")
        for highlight, cells in _table_rows(rows, group):
            if highlight:
                cells = [f"**{c}**" if i in (0, 2) else c for i, c in enumerate(cells)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        for note in setting_notes(runs, group):
            lines += ["", note]
        for png in plots.get(group, []):
            lines += ["", f"![{png.stem}]({png.name})"]
    if across:
        lines += ["", *across]
    bad = problems(runs)
    lines += ["", "## Runs not in the statistics", ""]
    if bad:
        lines += ["| run | status | setting | variant | seed | error |", "|---|---|---|---|---|---|"]
        lines += [
            f"| `{r.run_dir}` | {status(r)} | {setting_label(r.group or r.data)} | {r.variant or r.loss} | "
            f"{r.seed} | {(r.error or '').replace('|', '/')} |"
            for r in bad
        ]
    else:
        lines.append("None: every run finished with metrics.")
    path.write_text("\n".join(lines) + "\n")
    return path


def embed(png: Path) -> str:
    """A figure with the PNG inlined as a data URI (the page stays one self-contained file)."""
    data = base64.b64encode(png.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(png.stem)}" src="data:image/png;base64,{data}"></figure>'


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3} tr.best td{font-weight:bold;background:#eefbea}
tr.failed td{background:#fdecea} img{max-width:100%;border:1px solid #eee;margin:.5em 0}
"""

# flags an image that did not decode, so a headless browser check sees it as a console error
CHECK_IMAGES = """
window.addEventListener("load", function () {
  var bad = Array.prototype.filter.call(document.images, function (im) {
    return !(im.complete && im.naturalWidth > 0);
  });
  bad.forEach(function (im) { console.error("report image failed to load: " + im.alt); });
  document.body.setAttribute("data-images-ok", String(bad.length === 0));
  document.body.setAttribute("data-images", String(document.images.length));
});
"""


def write_html(
    rows: list[Row],
    runs: list[ReportRun],
    plots: dict[str, list[Path]],
    path: Path,
    source: str,
    verdict: list[str] | None = None,
    across_html: list[str] | None = None,
    lead: list[str] | None = None,
    alpha: float = 0.05,
) -> Path:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>lossbench comparison report</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>lossbench comparison report</h1>",
        f"<p>Source: <code>{esc(source)}</code> — {esc(counts(runs))}.</p>",
        *markdown.blocks(lead or []),
    ]
    if verdict:
        parts.append('<h2>Verdict</h2><ul class="verdict">')
        parts += [f"<li>{markdown.inline(v)}</li>" for v in verdict[:-1]]
        parts.append(f"</ul><p>{markdown.inline(verdict[-1])}</p>")
    parts.append(f"<p>{markdown.inline(legend(alpha))}</p>")
    for group in sorted({r.group for r in rows}):
        base = next(r.baseline for r in rows if r.group == group)
        parts.append(f"<h2>{esc(group)} <small>(baseline: {esc(base)})</small></h2>")
        parts.append('<table class="results"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in HEADER))
        parts.append("</tr></thead><tbody>")
        for highlight, cells in _table_rows(rows, group):
            cls = ' class="best"' if highlight else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        parts.append("</tbody></table>")
        parts += [f"<p>{markdown.inline(note)}</p>" for note in setting_notes(runs, group)]
        parts += [embed(png) for png in plots.get(group, [])]
    parts += across_html or []
    parts.append("<h2>Runs not in the statistics</h2>")
    bad = problems(runs)
    if bad:
        parts.append(
            '<table class="problems"><thead><tr><th>run</th><th>status</th><th>setting</th><th>variant</th>'
            "<th>seed</th>"
        )
        parts.append("<th>error</th></tr></thead><tbody>")
        for r in bad:
            parts.append(
                f'<tr class="failed"><td><code>{esc(r.run_dir)}</code></td><td>{esc(status(r))}</td>'
                f"<td>{esc(setting_label(r.group or r.data))}</td><td>{esc(r.variant or r.loss)}</td>"
                f"<td>{esc(str(r.seed))}</td><td>{esc(r.error or '')}</td></tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>None: every run finished with metrics.</p>")
    parts.append(f"<script>{CHECK_IMAGES}</script></body></html>")
    path.write_text("\n".join(parts) + "\n")
    return path
