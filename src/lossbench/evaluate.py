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
from lossbench.logs import ConsoleFilter, NoAdvertisements, process_rank, rank_zero
from lossbench.output_root import writable_run_dir
from lossbench.overrides import override_key, plain_overrides, sets_in
from lossbench.record import read_record
from lossbench.run_dir import RunDir
from lossbench.run_dir_claim import release_run_dir
from lossbench.signals import as_interrupted, exit_while_starting, sigterm_raises, started
from lossbench.threads import choose_wait_policy

log = logging.getLogger("lossbench")

#: overrides naming a file or folder, relative to the directory the run started in
PATH_KEYS = ("data.path", "data.root", "data.test_root")
#: overrides of the training run that do not describe what was trained
_NOT_CARRIED = ("ckpt_path=", "resume=", "test=", "task_name=", "logger=")
USAGE = """lossbench-eval: test a checkpoint with the config of the run that wrote it.

Usage: lossbench-eval ckpt_path=<run dir>/checkpoints/<file> [overrides]

  ckpt_path    a checkpoint a lossbench run wrote (best_epoch_NNN.ckpt or last.ckpt); the run's own
               overrides (data split, model, loss) are read from its run dir
  overrides    applied after the run's: trainer=gpu, data.batch_size=512, logger=csv (no logger by default)

Writes a new run dir, outputs/eval/<date>/<time>/ under the current directory (hydra.run.dir=<dir> for
another), with metrics.json (the test metrics and evaluated_checkpoint), predictions.npz and eval.log;
lossbench compare reads it like any run."""


def run_overrides_of(checkpoint: Path) -> list[str]:
    """The overrides (and ``hydra.searchpath``) of the run whose ``checkpoints/`` holds ``checkpoint``."""
    if checkpoint.is_dir():  # a run dir, or its checkpoints/
        folder = checkpoint / "checkpoints" if (checkpoint / "checkpoints").is_dir() else checkpoint
        files = sorted(folder.glob("*.ckpt"), key=lambda p: (not p.name.startswith("best"), p.name))
        example = f", e.g. ckpt_path={files[0]}" if files else ""
        raise ConfigError(f"ckpt_path={checkpoint} is a folder: pass one checkpoint file{example}")
    if not checkpoint.is_file():
        raise ConfigError(
            f"ckpt_path={checkpoint} does not exist (relative paths start at {Path.cwd()}): pass a "
            "checkpoint a lossbench run wrote, <run dir>/checkpoints/<file>"
        )
    run_dir = RunDir.of_checkpoint(checkpoint)
    if not run_dir.has_overrides():
        raise ConfigError(
            f"ckpt_path={checkpoint} is not a checkpoint inside a lossbench run dir (<run dir>/checkpoints/"
            f"<file> with <run dir>/.hydra/overrides.yaml): pass a checkpoint a lossbench run wrote"
        )
    try:
        saved = run_dir.overrides()
    except ValueError as err:
        raise ConfigError(
            f"{err}: the run's overrides cannot be read, so its config cannot be composed"
        ) from None
    carried = [o for o in plain_overrides(saved) if not o.startswith(_NOT_CARRIED)]
    if (cwd := run_dir.started_in()) is not None:  # its files and data folder, from wherever eval runs
        carried = [relative_to(o, cwd) for o in carried]
        if not any(override_key(o) == "paths.root_dir" for o in carried):
            carried.append(f"paths.root_dir={quoted(cwd)}")
    return carried + run_dir.searchpath_overrides()  # the user's config dirs, so their options compose again


def relative_to(override: str, cwd: Path) -> str:
    """``override`` with a relative file or folder made absolute from ``cwd``, the directory the run
    started in (where it was relative to): the value of a :data:`PATH_KEYS` key, or of another ``data.*``
    key (an own DataModule's argument) that names a file or folder there and reads as a path
    (``my.csv``, ``files/x``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    key = override_key(override.partition("=")[0])
    if key not in PATH_KEYS and not key.startswith("data."):
        return override
    value = OverridesParser.create().parse_override(override).value()  # unquoted: 'my data.csv'
    if not isinstance(value, str) or not value or "${" in value or Path(value).is_absolute():
        return override  # interpolated values are left as they were given
    if key not in PATH_KEYS and not ((Path(value).suffix or "/" in value) and (cwd / value).exists()):
        return override
    return f"{override.partition('=')[0]}={quoted(cwd / value)}"


def quoted(path: Path) -> str:
    """``path`` as a quoted Hydra override value (its single quotes escaped)."""
    return "'" + str(path).replace("'", "\\'") + "'"


#: overrides that choose which rows of the run's data form the test split
SPLIT_KEYS = ("data_seed", "data.val_fraction", "data.test_fraction", "data.split_column")
#: overrides that test on other data, which the run's split does not reach
OTHER_DATA_KEYS = ("data", "data.path", "data.root", "data.test_root")


def eval_overrides(checkpoint: Path, given: list[str]) -> list[str]:
    """The run's own overrides, then ``task_name=eval logger=none`` unless given, then the command line's;
    a :class:`ConfigError` for a ``loss`` override (the checkpoint is its run's loss's model: scored as
    another's, its record and ``compare`` would count its weights as that loss's), and for an override
    that splits the run's own data otherwise (its test split would hold rows the run trained on)."""
    given_keys = {override_key(a) for a in given}
    own = run_overrides_of(checkpoint)
    if lossy := sorted(k for k in given_keys if sets_in(k, "loss")):
        trained = next((o for o in own if override_key(o) == "loss"), "its loss")
        raise ConfigError(
            f"{lossy[0]}=...: ckpt_path is tested with the loss its run trained ({trained}), whose outputs "
            "its model learned; leave the loss overrides out"
        )
    own_values = {o.lstrip("+~") for o in own}
    resplit = [
        o
        for o in given
        if override_key(o) in SPLIT_KEYS and o.lstrip("+~") not in own_values and not ran_with(checkpoint, o)
    ]
    if resplit and not given_keys & set(OTHER_DATA_KEYS):
        key = override_key(resplit[0])
        ran = next((o for o in own if override_key(o) == key), f"{key} as configured")
        raise ConfigError(
            f"{resplit[0]}: the run's splits come from its own {ran}; another split of the same data would "
            "test, or fit its calibration, on rows the run trained on. Leave it out, or test on other data "
            "(data.path=, data.test_root=)"
        )
    first = [o for o in [*own, "task_name=eval", "logger=none"] if override_key(o) not in given_keys]
    check_carried_paths(checkpoint, first)
    # a quoted value, so that a file name holding "=" (older runs' best-epoch=019.ckpt) parses as one path
    return [*first, *given, f"ckpt_path='{checkpoint}'"]


def ran_with(checkpoint: Path, override: str) -> bool:
    """Whether the run that wrote ``checkpoint`` had the value ``override`` sets (its saved config's value
    of that key: a default restated, ``data_seed=0``, is the run's own)."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value: Any = RunDir.of_checkpoint(checkpoint).saved_config()
    except (OSError, yaml.YAMLError):
        return False
    for part in override_key(override).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value is not None and value == OverridesParser.create().parse_override(override).value()


def check_carried_paths(checkpoint: Path, carried: list[str]) -> None:
    """A :class:`ConfigError` for a file or folder the run named (:data:`PATH_KEYS`, made absolute from
    the folder the run started in) that is not there now, naming both and the override that fixes it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if "data.download=true" in carried:  # a data set's folder, filled again by its download
        return
    for override in carried:
        key = override_key(override)
        if key not in PATH_KEYS:
            continue
        value = OverridesParser.create().parse_override(override).value()
        if isinstance(value, str) and "${" not in value and not Path(value).exists():
            started = RunDir.of_checkpoint(checkpoint).started_in()
            where = f", read from the folder it started in ({started})" if started is not None else ""
            raise ConfigError(
                f"the run's {key} ({value}{where}) is not there now: pass {key}=<file or folder> to test on "
                "it where it is"
            )


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
            run_dir = RunDir(writable_run_dir(cfg))  # a new dir under outputs/eval/ (or hydra.run.dir=...)
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
