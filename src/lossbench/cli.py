"""``lossbench`` command line: ``lossbench compare <multirun dir>`` writes a comparison report."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("lossbench")


def _wandb_target(runs) -> tuple[str | None, str | None, str | None]:
    """(project, entity, group) of the W&B logger the local runs used, or Nones when they used none."""
    for r in runs:
        metrics = Path(r.run_dir) / "metrics.json"
        if not metrics.is_file():
            continue
        wb = ((json.loads(metrics.read_text()).get("config") or {}).get("logger") or {}).get("wandb")
        if wb and wb.get("mode", "auto") != "disabled":
            return wb.get("project"), wb.get("entity"), wb.get("group")
    return None, None, None


def parse_rope(values: list[str] | None) -> tuple[float, tuple[tuple[str, float], ...]]:
    """``--rope 0.01 --rope test/nll=0.02`` -> (default, per-metric overrides)."""
    from lossbench.report.verdict import DEFAULT_ROPE

    default, per_metric = DEFAULT_ROPE, []
    for value in values or []:
        name, _, number = value.rpartition("=")
        try:
            rope = float(number)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--rope {value}: expected a number or METRIC=number") from None
        if rope < 0:
            raise argparse.ArgumentTypeError(f"--rope {value}: the ROPE is a half-width, it must be >= 0")
        if name:
            per_metric.append((name, rope))
        else:
            default = rope
    return default, tuple(per_metric)


def compare(args: argparse.Namespace) -> int:
    from lossbench.report import across, plots, render, stats
    from lossbench.report.collect import assign_variants, collect_local, collect_wandb
    from lossbench.report.headline import headline
    from lossbench.report.verdict import Settings

    try:
        rope, rope_by_metric = parse_rope(args.rope)
    except argparse.ArgumentTypeError as err:
        print(f"lossbench compare: {err}", file=sys.stderr)
        return 2
    how = Settings(rope=rope, rope_by_metric=rope_by_metric, alpha=args.alpha, test=args.test)

    if args.wandb:
        if not args.group:
            print("lossbench compare: --wandb needs --group G (the sweep's W&B group)", file=sys.stderr)
            return 2
        runs = collect_wandb(args.wandb, args.group)
        source = f"wandb:{args.wandb} group={args.group}"
        out = Path(args.out or f"report_{args.group}")
        project, entity, group = args.wandb.split("/", 1)[-1], args.wandb.split("/", 1)[0], args.group
    else:
        if not args.runs:
            print("lossbench compare: give a multirun directory or --wandb entity/project", file=sys.stderr)
            return 2
        roots = [Path(r) for r in args.runs]
        for root in roots:
            if not root.is_dir():
                print(f"lossbench compare: {root} is not a directory", file=sys.stderr)
                return 2
        runs = assign_variants([r for root in roots for r in collect_local(root)])
        source = ", ".join(str(r) for r in roots)
        out = Path(args.out) if args.out else roots[0] / "report"
        project, entity, group = _wandb_target(runs)
    out.mkdir(parents=True, exist_ok=True)
    rows = stats.summarize(runs, baseline=args.baseline, how=how)
    figures = {} if args.no_plots else plots.make_all(runs, rows, out)
    over_settings = across.metric_ranks(rows, how.alpha)
    if not args.no_plots:
        across.make_figures(over_settings, out)
        figures["across settings"] = [p for m in over_settings for p in m.figures]
    verdict = headline(rows, runs, how)
    render.write_csv(rows, out / "report.csv")
    render.write_markdown(
        rows, runs, figures, out / "report.md", source, verdict, across.markdown(over_settings)
    )
    render.write_html(
        rows,
        runs,
        figures,
        out / "report.html",
        source,
        verdict,
        across.html_parts(over_settings, render.embed),
    )
    bad = render.problems(runs)
    print(
        f"report: {out / 'report.html'} ({len(runs)} runs, {len(runs) - len(bad)} ok, "
        f"{len(bad)} failed/missing)"
    )
    for r in bad:
        print(f"  {r.status}: {r.run_dir} {r.error or ''}")
    if args.log_wandb and project and group:
        from lossbench.report.wandb_log import log_report

        run_id = log_report(rows, figures, project=project, entity=entity, group=group, save_dir=out)
        print(f"W&B: comparison table logged to run {run_id} in group {group}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="compare the losses of a sweep: report.md/.csv/.html + plots")
    cmp.add_argument(
        "runs", nargs="*", help="multirun directories (multirun/<date>/<time>) or any parents of runs"
    )
    cmp.add_argument("-o", "--out", help="output directory (default: <runs>/report)")
    cmp.add_argument("--baseline", default="ce", help="variant for the paired tests (default: ce, else mse)")
    cmp.add_argument(
        "--rope",
        action="append",
        metavar="[METRIC=]WIDTH",
        help="half-width of the region of practical equivalence, in the metric's units (default 0.005); "
        "repeat as METRIC=WIDTH per metric, e.g. --rope test/nll=0.02",
    )
    cmp.add_argument(
        "--alpha", type=float, default=0.05, help="family-wise error rate per setting and metric"
    )
    cmp.add_argument(
        "--test", choices=("t", "wilcoxon"), default="t", help="paired test vs the baseline (default: t)"
    )
    cmp.add_argument("--no-plots", action="store_true", help="tables only (fast, for scripts)")
    cmp.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read online runs through wandb.Api instead")
    cmp.add_argument("--group", help="the W&B group of the sweep (with --wandb)")
    cmp.add_argument(
        "--log-wandb",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log the table as a wandb.Table to a summary run in the runs' W&B group (default: on)",
    )
    cmp.set_defaults(func=compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
