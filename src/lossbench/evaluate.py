"""Test a checkpoint with the config of the run that wrote it: ``lossbench-eval ckpt_path=<file>``.

The run dir holding the checkpoint (``<run dir>/checkpoints/<file>``) keeps the run's overrides
(:meth:`lossbench.run_dir.RunDir.overrides`); :func:`main` composes the training config again with them
(:func:`lossbench.config.compose_run`, so data split, model and loss are the run's own), then with the
command line's other overrides (e.g. ``trainer=gpu``), and runs :func:`lossbench.run.run` with fitting off.
The new run dir (``task_name=eval``) gets a ``metrics.json`` with ``evaluated_checkpoint`` and the test
metrics, ``predictions.npz`` and ``eval.log``. Nothing is logged to W&B unless ``logger=`` is given.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from lossbench.config import as_run, compose_run
from lossbench.errors import (
    EXIT_USAGE,
    ConfigError,
    DataError,
    LossbenchError,
    exit_status,
    one_line,
)
from lossbench.eval_overrides import eval_overrides
from lossbench.logs import ConsoleFilter, NoAdvertisements, process_rank, rank_zero
from lossbench.output_root import writable_run_dir
from lossbench.record import read_record
from lossbench.run_dir import RunDir
from lossbench.run_dir_claim import release_run_dir
from lossbench.signals import as_interrupted, exit_while_starting, sigterm_raises, started
from lossbench.threads import choose_wait_policy

log = logging.getLogger("lossbench")

USAGE = """lossbench-eval: test a checkpoint with the config of the run that wrote it.

Usage: lossbench-eval ckpt_path=<run dir>/checkpoints/<file> [overrides]

  ckpt_path    a checkpoint a lossbench run wrote (best_epoch_NNN.ckpt or last.ckpt); the run's own
               overrides (data split, model, loss) are read from its run dir
  overrides    applied after the run's: trainer=gpu, data.batch_size=512, logger=csv (no logger by default)

Writes a new run dir, outputs/eval/<date>/<time>/ under the current directory (hydra.run.dir=<dir> for
another), with metrics.json (the test metrics and evaluated_checkpoint), predictions.npz and eval.log;
lossbench compare reads it like any run."""


def main() -> None:
    """``lossbench-eval ckpt_path=<file> [overrides]``: the run's own overrides first, then these."""
    args = sys.argv[1:]
    given = [a for a in args if a.startswith("ckpt_path=")]
    if not given or any(a in ("--help", "-h") for a in args):
        print(USAGE)
        raise SystemExit(0 if given or "--help" in args or "-h" in args else EXIT_USAGE)
    checkpoint = Path(given[-1].split("=", 1)[1])
    choose_wait_policy()  # before torch loads, as train.py does
    exit_while_starting("lossbench-eval")  # until started(), a stop ends the process at once, in one line
    run_dir: RunDir | None = None
    try:
        try:
            try:
                cfg = compose_run(
                    eval_overrides(checkpoint, [a for a in args if not a.startswith("ckpt_path=")])
                )
            except (HydraException, OmegaConfBaseException) as err:  # nosuch=1, loss=bogus: one line
                raise ConfigError(one_line(err)) from None
            target = RunDir(writable_run_dir(cfg))  # a new dir under outputs/eval/ (or hydra.run.dir=...)
            if held := [p.name for p in (target.record, target.checkpoints, target.hydra) if p.exists()]:
                raise ConfigError(
                    f"hydra.run.dir={target.path} holds a run ({', '.join(held)}), whose record and "
                    "predictions an evaluation would replace: choose an empty folder, or leave "
                    "hydra.run.dir out (outputs/eval/<date>/<time>)"
                )
            run_dir = target
            rank = process_rank()  # a DDP process above 0 logs beside it, as a training run's does
            log_to_console_and(run_dir.path / ("eval.log" if rank == 0 else f"eval_ddp_process_{rank}.log"))
            from lossbench.run import run  # torch and Lightning load here
        finally:
            started()
        with sigterm_raises():
            summary = run(as_run(cfg, run_dir.path), fit=False)
    except LossbenchError as err:
        if run_dir is not None:  # refused: its new run dir holds nothing but the log
            release_run_dir(run_dir.path)
        print(f"lossbench-eval: {one_line(err)}", file=sys.stderr)
        raise SystemExit(exit_status(err)) from None
    except (Exception, KeyboardInterrupt) as caught:
        if (err := as_interrupted(caught)) is None:
            raise
        print(
            f"lossbench-eval: stopped by {err.signal_name}: nothing was written; run it again",
            file=sys.stderr,
        )
        raise SystemExit(err.exit_status) from None
    tested = " ".join(f"{k}={v:.4f}" for k, v in summary["test"].items())
    if rank_zero():  # once, not once per DDP process
        log.info("run dir %s | %s | %s", run_dir.path, summary["evaluated_checkpoint"], tested)


def tested_data_info(checkpoint: Path) -> dict[str, Any]:
    """The ``data_info`` the record of the run that wrote ``checkpoint`` holds, else (a run stopped before
    its record had it) the one ``checkpoint`` holds; none without either."""
    try:
        info = read_record(RunDir.of_checkpoint(checkpoint).path).data_info
    except (OSError, ValueError):
        info = None
    if not info:
        from lossbench.checkpointing import stamped_data_info

        info = stamped_data_info(checkpoint)
    return dict(info or {})


def check_same_classes(checkpoint: Path, labels: list[Any] | None) -> None:
    """Refuse to test ``checkpoint`` on data whose named classes are not those of the run that wrote it.

    The model's output ``i`` is the class the run named ``i`` (its ``labels.json``); data whose classes
    differ, or come in another order, would be scored by index against other classes, without a word.
    Data without named classes, or a run dir without ``labels.json``, have nothing to compare.
    """
    saved_file = RunDir.of_checkpoint(checkpoint).labels
    if labels is None or not saved_file.is_file():
        return
    try:
        saved_map = json.loads(saved_file.read_text())
        saved = [str(saved_map[k]) for k in sorted(saved_map, key=int)]
    except (ValueError, TypeError, LookupError):
        raise DataError(f"{saved_file} is not the JSON map of class index -> label a run writes") from None
    here = [str(label) for label in labels]
    if here == saved:
        return
    shared = min(len(saved), len(here))
    where = next((i for i in range(shared) if saved[i] != here[i]), shared)
    if where < shared:
        at = f"class {where} is {saved[where]!r} there and {here[where]!r} here"
    else:
        at = f"{len(saved)} classes there, {len(here)} here"
    raise DataError(
        f"the data's classes are not those of the run that wrote ckpt_path ({at}; its classes are in "
        f"{saved_file}): the model's outputs are that run's class indices, so test on data with the same "
        "classes (the same class folders or target values), or train a run on this data"
    )


def log_to_console_and(log_file: Path) -> None:
    """INFO and above to the console and to ``log_file``, in the format of Hydra's job logging."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fmt = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    console = logging.StreamHandler()
    console.addFilter(ConsoleFilter())  # no advertisements, as train.py's console and log file
    file = logging.FileHandler(log_file)
    file.addFilter(NoAdvertisements())
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=[console, file])
