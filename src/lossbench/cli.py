"""``lossbench`` command line: ``compare`` (a comparison report of runs), ``tune`` (the equal-budget
protocol) and ``advise`` (from a data set to a recommended loss)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from lossbench.errors import SIGNAL_EXIT
from lossbench.report.command import compare
from lossbench.signals import exit_while_starting, started

log = logging.getLogger("lossbench")

#: when this command started (``time.monotonic()``): ``lossbench advise``'s budget counts from here
COMMAND_STARTED = time.monotonic()


def tune(args: argparse.Namespace) -> int:
    from lossbench.threads import choose_wait_policy

    choose_wait_policy()  # before torch loads, as train.py does
    from lossbench.errors import LossbenchError, exit_status
    from lossbench.output_root import check_writable, command_lock, remove_if_empty
    from lossbench.signals import as_interrupted, raise_if_stopped, sigterm_raises, started
    from lossbench.tune.stored import check_storage
    from lossbench.tune.study import Plan

    new_out = not Path(args.out).exists()
    try:
        try:
            plan = Plan(
                losses=[x.strip() for x in args.loss.split(",") if x.strip()],
                trials=args.trials,
                seeds=args.seeds,
                out=Path(args.out),
                overrides=list(args.overrides),
                storage=args.storage,
                prune=args.prune,
                seed=args.seed,
                workers=args.workers,
                pack=args.pack,
            )
            check_writable(plan.out, "--out")  # both before torch loads: named within seconds
            check_storage(plan)
            import lossbench.run  # noqa: F401  torch and Lightning load while a stop still ends at once
        finally:
            started()
        from lossbench.tune.runner import tune as run_tune

        with sigterm_raises(), command_lock(plan.out, "lossbench tune"):
            out = run_tune(plan)
            raise_if_stopped()  # a SIGTERM Python swallowed after the last run
    except LossbenchError as err:
        print(f"lossbench tune: {type(err).__name__}: {err}", file=sys.stderr)
        if new_out:
            remove_if_empty(Path(args.out))  # a refused command leaves no folder behind
        return exit_status(err)
    except (Exception, KeyboardInterrupt) as caught:  # a signal inside a trial, or between them
        if (err := as_interrupted(caught)) is None:
            raise
        print(
            f"lossbench tune: stopped by {err.signal_name}; the same command continues it (finished trials "
            "and final runs are kept; an unfinished final run continues from its last epoch)",
            file=sys.stderr,
        )
        return err.exit_status
    print(f"tune: report {out / 'report.html'}; studies in {plan.storage_url}")
    return 0


def advise(args: argparse.Namespace) -> int:
    from lossbench.threads import choose_wait_policy

    choose_wait_policy()  # before torch loads, as train.py does
    from lossbench.advise.budget import parse_budget
    from lossbench.advise.command import advise as run_advise
    from lossbench.advise.command import check_metric, default_out
    from lossbench.config import check_known_losses
    from lossbench.errors import LossbenchError, exit_status
    from lossbench.output_root import check_writable, command_lock, remove_if_empty
    from lossbench.signals import as_interrupted, command_line, raise_if_stopped, sigterm_raises, started

    losses = [x.strip() for x in (args.loss or "").split(",") if x.strip()]
    out = Path(args.out) if args.out else default_out()
    new_out = not out.exists()
    try:
        try:
            parse_budget(args.budget)
            check_metric(args.metric)
            check_known_losses(losses)
            check_writable(out, "--out")  # before torch loads: named within seconds
            import lossbench.run  # noqa: F401  torch and Lightning load while a stop still ends at once
        finally:
            started()
        with sigterm_raises(), command_lock(out, "lossbench advise"):
            result = run_advise(
                list(args.overrides),
                budget=args.budget,
                workers=args.workers,
                losses=losses or None,
                metric=args.metric,
                out=out,
                started=COMMAND_STARTED,  # the budget counts the imports too
                pack=args.pack,
            )
            raise_if_stopped()  # a SIGTERM Python swallowed after the last run
    except LossbenchError as err:
        print(f"lossbench advise: {type(err).__name__}: {err}", file=sys.stderr)
        if new_out:
            remove_if_empty(out)  # a refused command leaves no folder behind
        return exit_status(err)
    except (Exception, KeyboardInterrupt) as caught:  # a signal inside a run, or between runs
        if (err := as_interrupted(caught)) is None:
            raise
        again = command_line([] if args.out else ["--out", str(out)])
        print(
            f"lossbench advise: stopped by {err.signal_name}; finished trials and final runs in {out} are "
            f"kept. Continue with: {again}",
            file=sys.stderr,
        )
        return err.exit_status
    print(f"recommendation: {result['recommendation']}")
    print(
        f"advise: {Path(result['report']).parent.parent / 'recommendation.json'}; report {result['report']}"
    )
    return 0


def advise_parser() -> argparse.ArgumentParser:
    """``lossbench advise``'s own parser: options and Hydra overrides may come in any order."""
    ap = argparse.ArgumentParser(
        prog="lossbench advise",
        description="From a data set to a recommended loss: profile the training split (imbalance, "
        "estimated label noise, outlying targets), shortlist the losses it calls for with their reasons, "
        "tune and replicate each within --budget (the protocol of lossbench tune, the same trials and "
        "replicates per loss), and recommend a loss only when it is called better than the baseline. "
        "Rerun the same command with --out DIR to continue a stopped one.",
    )
    ap.add_argument(
        "--budget", default="30m", help="wall time for the whole command, e.g. 15m, 1h30m (default: 30m)"
    )
    ap.add_argument("--workers", type=int, default=1, help="runs at once on this machine (default: 1)")
    ap.add_argument(
        "--pack",
        type=int,
        default=8,
        help="most runs of a round trained as one packed model (default: 8; 1: one by one)",
    )
    ap.add_argument("--loss", help="comma-separated losses instead of the shortlist (the baseline stays)")
    ap.add_argument(
        "--metric", help="the test metric that decides (default: from the profile, e.g. bal_acc, mae)"
    )
    ap.add_argument("--out", help="output directory (default: advise/<date>/<time>)")
    ap.add_argument(
        "overrides", nargs="*", help="Hydra overrides: the data set and anything else, e.g. data=wine"
    )
    ap.set_defaults(func=advise)
    return ap


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="compare the losses of a sweep: report.md/.csv/.html + plots")
    cmp.add_argument(
        "runs",
        nargs="*",
        help="multirun directories (multirun/<task_name>/<date>/<time>) or any parents of runs",
    )
    cmp.add_argument(
        "-o",
        "--out",
        help="output directory (default: <runs>/report; <runs>/compare for a tune/advise --out)",
    )
    cmp.add_argument(
        "--baseline", help="variant for the paired tests (default: ce, bce or mse, else the first by name)"
    )
    cmp.add_argument(
        "--rope",
        action="append",
        metavar="[METRIC=]WIDTH",
        help="half-width of the region of practical equivalence, in the metric's units (default: 0.005); "
        "repeat as METRIC=WIDTH per metric, e.g. --rope test/nll=0.02",
    )
    cmp.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="family-wise error rate per setting and metric (default: 0.05)",
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
    tn = sub.add_parser(
        "tune",
        help="tune every loss with the same budget (Optuna), retrain the best over seeds, report",
        description="Equal-budget tuning: one Optuna study per loss over the shared search space "
        "(tune/spaces/optim.yaml) plus the loss's own (tune/spaces/<loss>.yaml), chosen on the validation "
        "metric; then the best configuration of each loss retrained for --seeds replicates and compared. "
        "Rerunning the same command continues a killed run.",
    )
    tn.add_argument(
        "--loss", required=True, help="comma-separated loss options, e.g. ce,focal,logit_adjusted"
    )
    tn.add_argument(
        "--trials", type=int, default=20, help="trials per loss, finished or pruned (default: 20)"
    )
    tn.add_argument(
        "--seeds", type=int, default=5, help="replicates of each loss's best configuration (default: 5)"
    )
    tn.add_argument("--out", required=True, help="directory for the studies, trials, final runs and report")
    tn.add_argument(
        "--workers", type=int, default=1, help="trials at once on this machine, threads or GPUs (default: 1)"
    )
    tn.add_argument(
        "--storage",
        help="Optuna storage: an SQLAlchemy URL or a journal file (*.log); default sqlite:///<out>/study.db",
    )
    tn.add_argument("--prune", action="store_true", help="prune trials by their validation curve (median)")
    tn.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default: 0)")
    tn.add_argument(
        "--pack",
        type=int,
        default=8,
        help="trials of a loss asked together and trained as one packed model (lossbench.packed) where "
        "they can be (default: 8; 1: one at a time)",
    )
    tn.add_argument(
        "overrides", nargs="*", help="Hydra overrides for every run, e.g. experiment=imbalanced_digits"
    )
    tn.set_defaults(func=tune)
    sub.add_parser(
        "advise",
        help="profile a data set, tune the losses it calls for within a budget, recommend one",
        add_help=False,  # `lossbench advise --help` is advise_parser()'s
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``lossbench <command>``; a stop while the command starts is one line (:mod:`lossbench.signals`)."""
    exit_while_starting("lossbench")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["advise"]:
            return advise(advise_parser().parse_intermixed_args(argv[1:]))
        args = build_parser().parse_args(argv)
        if args.func is not tune:
            started()  # compare loads neither torch nor Lightning
        return args.func(args)
    except KeyboardInterrupt:  # tune and advise say more themselves
        print(f"lossbench {' '.join(argv[:1])}: stopped by SIGINT; run it again", file=sys.stderr)
        return SIGNAL_EXIT["SIGINT"]
    finally:
        started()


if __name__ == "__main__":
    raise SystemExit(main())
