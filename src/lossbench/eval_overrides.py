"""The overrides a checkpoint is tested with (``lossbench-eval``): those of the run that wrote it, read from
its run dir (Hydra's ``.hydra/overrides.yaml``; for a ``lossbench tune`` run, its record and tuned
parameters), its paths made absolute from the folder it started in, then the command line's, refusing those
that would test on rows the run trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError
from lossbench.overrides import override_key, plain_overrides, sets_in
from lossbench.record import read_record
from lossbench.run_dir import RunDir

#: overrides naming a file or folder, relative to the directory the run started in
PATH_KEYS = ("data.path", "data.root", "data.test_root")
#: overrides of the training run that do not describe what was trained
_NOT_CARRIED = ("ckpt_path=", "resume=", "test=", "task_name=", "logger=")


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
        saved, cwd = tune_run_overrides(checkpoint, run_dir)
    else:
        try:
            saved = run_dir.overrides()
        except ValueError as err:
            raise ConfigError(
                f"{err}: the run's overrides cannot be read, so its config cannot be composed"
            ) from None
        cwd = run_dir.started_in()
    carried = [o for o in plain_overrides(saved) if not o.startswith(_NOT_CARRIED)]
    if cwd is not None:  # its files and data folder, from wherever eval runs
        carried = [relative_to(o, cwd) for o in carried]
        if not any(override_key(o) == "paths.root_dir" for o in carried):
            carried.append(f"paths.root_dir={quoted(cwd)}")
    return carried + run_dir.searchpath_overrides()  # the user's config dirs, so their options compose again


def tune_run_overrides(checkpoint: Path, run_dir: RunDir) -> tuple[list[str], Path | None]:
    """The overrides and starting folder of a ``lossbench tune`` (or ``advise``) trial or final run, which
    Hydra's app did not start (no ``.hydra/``): its record's overrides, with a final run's tuned
    parameters (its ``tuned.json``: its record names the tune's overrides, not them), and its config's
    ``paths.root_dir``."""
    from lossbench.tune.space import overrides as tuned_overrides

    record = read_record(run_dir.path)
    if not record.overrides:
        raise ConfigError(
            f"ckpt_path={checkpoint} is not a checkpoint inside a lossbench run dir (<run dir>/checkpoints/"
            f"<file> with <run dir>/.hydra/overrides.yaml, or a tune's run with its metrics.json): pass a "
            "checkpoint a lossbench run wrote"
        )
    tuned = json.loads(run_dir.tuned.read_text()) if run_dir.tuned.is_file() else {}
    given = {override_key(o) for o in record.overrides}
    saved = [*record.overrides, *(o for o in tuned_overrides(tuned) if override_key(o) not in given)]
    root = ((record.config or {}).get("paths") or {}).get("root_dir")
    return saved, Path(root) if root else None


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
