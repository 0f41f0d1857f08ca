"""``lossbench compare``: the comparison report of finished runs (a multirun directory, any parents of
runs, or a W&B group): ``report.md``, ``.csv`` and ``.html`` with plots, and the table logged to W&B."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from lossbench.record import read_record
from lossbench.run_dir import RunDir

if TYPE_CHECKING:
    from lossbench.report.collect import ReportRun


def wandb_mode_used(run_dir: Path, save_dir: str | None = None) -> str | None:
    """How a run logged to W&B, from the W&B files under its logger's ``save_dir`` (by default its run
    dir): ``online`` with a ``wandb/run-*`` folder, else ``offline`` with a ``wandb/offline-run-*`` one,
    else None (no W&B logger, or ``disabled``, which writes nothing). A ``save_dir`` several runs share
    counts the folders of the run's own W&B id (``wandb_run_id``)."""
    folder, id_file = Path(save_dir or run_dir) / "wandb", RunDir(run_dir).wandb_id
    tail = f"-{id_file.read_text().strip()}" if save_dir and id_file.is_file() else ""
    if any(p.is_dir() for p in folder.glob(f"run-*{tail}")):
        return "online"
    if any(p.is_dir() for p in folder.glob(f"offline-run-*{tail}")):
        return "offline"
    return None


def _wandb_target(runs: list[ReportRun]) -> tuple[str | None, str | None, str | None, str]:
    """(project, entity, group) of the W&B logger the local runs logged to, and the mode of the report's
    W&B run: ``auto`` (resolved as the runs' was) when any run logged online, ``offline`` when they all
    logged offline; Nones when no finished run logged to W&B (:func:`wandb_mode_used`)."""
    target, modes = None, set()
    for r in runs:
        if not r.ok:
            continue
        logger = (read_record(Path(r.run_dir)).config or {}).get("logger")
        wb = logger.get("wandb") if isinstance(logger, dict) else None
        if not isinstance(wb, dict):
            continue
        save_dir = wb.get("save_dir")
        own = save_dir is None or Path(str(save_dir)).resolve() == Path(r.run_dir).resolve()
        if (used := wandb_mode_used(Path(r.run_dir), None if own else str(save_dir))) is not None:
            target = target or (wb.get("project"), wb.get("entity"), wb.get("group"))
            modes.add(used)
    if target is None:
        return None, None, None, "auto"
    return (*target, "auto" if "online" in modes else "offline")


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
        if not math.isfinite(rope) or rope < 0:
            raise argparse.ArgumentTypeError(
                f"--rope {value}: the ROPE is a half-width, a finite number >= 0"
            )
        if name:
            per_metric.append((name, rope))
        else:
            default = rope
    return default, tuple(per_metric)


def print_problems(runs: list[ReportRun], file: TextIO) -> None:
    """One line per run that is not in the statistics: its status, its dir and why."""
    from lossbench.report import render

    for r in render.problems(runs):
        print(f"  {render.status(r)}: {r.run_dir} {r.error or ''}", file=file)


def compare(args: argparse.Namespace) -> int:
    from lossbench.errors import ConfigError, one_line
    from lossbench.output_root import check_writable
    from lossbench.report import render
    from lossbench.report.collect import collect_local, collect_wandb
    from lossbench.report.variants import assign_variants
    from lossbench.report.verdict import Settings
    from lossbench.report.write import write_report

    try:
        rope, rope_by_metric = parse_rope(args.rope)
    except argparse.ArgumentTypeError as err:
        print(f"lossbench compare: {err}", file=sys.stderr)
        return 2
    if not 0.0 < args.alpha < 1.0:
        print(f"lossbench compare: --alpha {args.alpha} must lie in (0, 1), e.g. 0.05", file=sys.stderr)
        return 2
    how = Settings(rope=rope, rope_by_metric=rope_by_metric, alpha=args.alpha, test=args.test)

    if args.wandb:
        if not args.group:
            print("lossbench compare: --wandb needs --group G (the sweep's W&B group)", file=sys.stderr)
            return 2
        try:
            runs = collect_wandb(args.wandb, args.group)
        except LookupError as err:  # no runs in that group
            print(f"lossbench compare: {err}", file=sys.stderr)
            return 2
        except Exception as err:  # wandb.errors.Error: no API key, no network, no such project
            if type(err).__module__.split(".")[0] != "wandb":
                raise
            print(
                f"lossbench compare: --wandb {args.wandb} could not be read from W&B ({one_line(err)}): it "
                "needs `wandb login` and the network; without them, compare the local run dirs "
                "(lossbench compare multirun/<task_name>/<date>/<time>)",
                file=sys.stderr,
            )
            return 2
        source = f"wandb:{args.wandb} group={args.group}"
        out = Path(args.out or f"report_{args.group}")
        project, entity, group = args.wandb.split("/", 1)[-1], args.wandb.split("/", 1)[0], args.group
        mode = "auto"
    else:
        if not args.runs:
            print("lossbench compare: give a multirun directory or --wandb entity/project", file=sys.stderr)
            return 2
        if args.group:
            print(f"lossbench compare: --group {args.group} names a W&B group: add --wandb", file=sys.stderr)
            return 2
        roots = [Path(r) for r in args.runs]
        for root in roots:
            if not root.is_dir():
                print(f"lossbench compare: {root} is not a directory", file=sys.stderr)
                return 2
        try:
            runs = assign_variants([r for root in roots for r in collect_local(root)])
        except FileNotFoundError as err:
            print(f"lossbench compare: {err}", file=sys.stderr)
            return 2
        source = ", ".join(str(r) for r in roots)
        out = Path(args.out) if args.out else default_out(roots[0])
        project, entity, group, mode = _wandb_target(runs)
    variants = sorted({r.variant for r in runs if r.ok})
    if not variants:
        print(
            f"lossbench compare: no run of {source} finished ({render.counts(runs)}): nothing to compare. "
            "Continue or fix them (a sweep: the same command with resume=true hydra.sweep.dir=<its dir>):",
            file=sys.stderr,
        )
        print_problems(runs, sys.stderr)
        return 1
    metrics = sorted({m.removesuffix(" (best)") for r in runs if r.ok for m in r.metrics})
    if unknown := [name for name, _ in rope_by_metric if name not in metrics]:
        print(
            f"lossbench compare: --rope {unknown[0]}=...: no run reports {unknown[0]}; the metrics are "
            f"{', '.join(metrics)}",
            file=sys.stderr,
        )
        return 2
    if args.baseline is not None and args.baseline not in variants:
        print(
            f"lossbench compare: --baseline {args.baseline} is not among the variants: {', '.join(variants)}",
            file=sys.stderr,
        )
        return 2
    try:
        check_writable(out, "the report folder")
    except ConfigError as err:
        print(f"lossbench compare: {err} (--out DIR)", file=sys.stderr)
        return 2
    lead = []
    if args.baseline is not None and (lacking := settings_without(runs, args.baseline)):
        lead.append(
            f"`--baseline {args.baseline}` has no finished run in {'; '.join(lacking)}: there the baseline "
            "is the first of ce, bce, mse compared, else the first loss by name."
        )
        print(f"lossbench compare: {lead[-1]}".replace("`", ""), file=sys.stderr)
    rows, figures = write_report(
        runs, out, source, how, args.baseline, with_plots=not args.no_plots, lead=lead
    )
    print(f"report: {out / 'report.html'} ({render.counts(runs)})")
    print_problems(runs, sys.stdout)
    if args.log_wandb and project and group:
        from lossbench.report.wandb_log import log_report

        run_id = log_report(
            rows, figures, project=project, entity=entity, group=group, save_dir=out, mode=mode
        )
        print(f"W&B: comparison table logged to run {run_id} in group {group}")
    return 0


def default_out(root: Path) -> Path:
    """Where the report of runs under ``root`` goes without ``--out``: ``root/report``; ``root/compare`` when
    ``root`` is a ``lossbench tune`` or ``advise`` ``--out``, whose ``report/`` holds that command's own
    report (with its tuning-budget section)."""
    from lossbench.tune.out_dir import SEARCH_FILES, present

    return root / ("compare" if present(root, SEARCH_FILES) else "report")


def settings_without(runs: list[ReportRun], variant: str) -> list[str]:
    """The settings (groups) with finished runs of which none is of ``variant``."""
    from lossbench.report.stats import setting_label

    groups = {r.group for r in runs if r.ok}
    lacking = (g for g in groups if not any(r.ok and r.group == g and r.variant == variant for r in runs))
    return sorted(setting_label(g) for g in lacking)
