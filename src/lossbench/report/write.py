"""Write one comparison report (``report.csv``, ``report.md``, ``report.html`` and the plots) from runs."""

from __future__ import annotations

from pathlib import Path

from lossbench.report import across, plots, render, stats
from lossbench.report.collect import ReportRun
from lossbench.report.headline import headline
from lossbench.report.verdict import Settings


def write_report(
    runs: list[ReportRun],
    out: Path,
    source: str,
    how: Settings,
    baseline: str | None = "ce",
    with_plots: bool = True,
    extra_md: list[str] | None = None,
    extra_html: list[str] | None = None,
    lead: list[str] | None = None,
) -> tuple[list[stats.Row], dict[str, list[Path]]]:
    """The report of ``runs`` into ``out``; ``extra_*`` are sections placed after the across-settings one,
    ``lead`` (Markdown lines, rendered as HTML in the page) comes first, before the verdict."""
    out.mkdir(parents=True, exist_ok=True)
    rows = stats.summarize(runs, baseline=baseline, how=how)
    figures = plots.make_all(runs, rows, out) if with_plots else {}
    over_settings = across.metric_ranks(rows, how.alpha)
    if with_plots:
        across.make_figures(over_settings, out)
        figures["across settings"] = [p for m in over_settings for p in m.figures]
    verdict = headline(rows, runs, how)
    render.write_csv(rows, out / "report.csv")
    md = [*across.markdown(over_settings), *(extra_md or [])]
    render.write_markdown(rows, runs, figures, out / "report.md", source, verdict, md, lead, how.alpha)
    html = [*across.html_parts(over_settings, render.embed), *(extra_html or [])]
    render.write_html(rows, runs, figures, out / "report.html", source, verdict, html, lead, how.alpha)
    return rows, figures
