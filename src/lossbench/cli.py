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


def compare(args: argparse.Namespace) -> int:
    from lossbench.report import plots, render, stats
    from lossbench.report.collect import collect_local, collect_wandb

    if args.wandb:
        if not args.group:
            print("lossbench compare: --wandb needs --group G (the sweep's W&B group)", file=sys.stderr)
            return 2
        runs = collect_wandb(args.wandb, args.group)
        source = f"wandb:{args.wandb} group={args.group}"
        out = Path(args.out or f"report_{args.group}")
        project, entity, group = args.wandb.split("/", 1)[-1], args.wandb.split("/", 1)[0], args.group
    else:
        if args.runs is None:
            print("lossbench compare: give a multirun directory or --wandb entity/project", file=sys.stderr)
            return 2
        root = Path(args.runs)
        if not root.is_dir():
            print(f"lossbench compare: {root} is not a directory", file=sys.stderr)
            return 2
        runs = collect_local(root)
        source = str(root)
        out = Path(args.out) if args.out else root / "report"
        project, entity, group = _wandb_target(runs)
    out.mkdir(parents=True, exist_ok=True)
    rows = stats.summarize(runs, baseline=args.baseline)
    figures = plots.make_all(runs, rows, out)
    render.write_csv(rows, out / "report.csv")
    render.write_markdown(rows, runs, figures, out / "report.md", source)
    render.write_html(rows, runs, figures, out / "report.html", source)
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
        "runs", nargs="?", help="a multirun directory (multirun/<date>/<time>) or any parent of runs"
    )
    cmp.add_argument("-o", "--out", help="output directory (default: <runs>/report)")
    cmp.add_argument("--baseline", default="ce", help="variant for the paired tests (default: ce, else mse)")
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
