"""The run record: ``metrics.json``, what a run (trained, failed, interrupted or evaluated) left in its dir.

:class:`RunRecord` is the one description of that file; :func:`write_record` writes it (atomically: a
temporary file beside it, fsynced, renamed over it, so a reader never sees half a record and a failed write
leaves the previous one) and :func:`read_record` reads it back. A reader always gets a record: when the run
dir holds no ``metrics.json`` its status is ``missing``; when the file is cut off, not JSON, or of another
shape (a list, a field of the wrong type, an unknown status or schema version) it is ``unreadable``; either
way ``error["message"]`` says why and :attr:`RunRecord.reason` gives it as one line.

Fields (the JSON keys; absent keys read as the defaults, ``None`` ones are not written):

* ``version``: schema version, :data:`SCHEMA_VERSION` (a file without it is version 1);
* ``status``: ``ok`` (trained and tested, or evaluated), ``failed`` (an exception ended the job) or
  ``interrupted`` (SIGTERM/Ctrl-C; ``resume=true`` continues it);
* ``loss``, ``data``, ``model``: the chosen config options; ``seed``, ``data_seed``;
* ``overrides``: the run's command-line overrides (Hydra's task overrides);
* ``monitor``: ``{metric, mode, best, best_checkpoint}``, the validation metric checkpoints were chosen on;
* ``val``, ``test``: ``{"val/<m>": value}`` at the end of fit, ``{"test/<m>": value}`` of the tested
  checkpoint;
* ``epochs``, ``data_info`` (the data module's description), ``wall_s``, ``timings`` (phase wall times);
* ``config``: the resolved config (without the ``hydra`` node);
* ``error``: ``{type, message, traceback}`` of a failed or interrupted run;
* ``job_num``: the Hydra job number of a failed sweep job;
* ``evaluated_checkpoint``: the checkpoint an evaluation run (``lossbench-eval``) tested.

Keys this schema does not know are ignored when read.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from lossbench.atomic_files import write_text_atomically
from lossbench.run_dir import RECORD_NAME, RunDir

#: the schema version :func:`write_record` writes and :func:`read_record` reads
SCHEMA_VERSION = 1

OK, FAILED, INTERRUPTED = "ok", "failed", "interrupted"
#: the statuses a written record holds
WRITTEN = (OK, FAILED, INTERRUPTED)
#: the statuses :func:`read_record` gives when there is no record to read
MISSING, UNREADABLE = "missing", "unreadable"
STATUSES = (*WRITTEN, MISSING, UNREADABLE)
#: the key of a run's W&B config that holds the record's ``overrides`` (:func:`lossbench.loggers.wandb_config`
#: writes it, ``lossbench compare`` reads it)
WANDB_OVERRIDES_KEY = "overrides"
#: the W&B job type of the run ``lossbench compare`` logs its table to, in the sweep's group (the training
#: runs' job type is their loss); ``lossbench compare --wandb`` leaves it out of the group's runs
REPORT_JOB_TYPE = "report"


@dataclass
class RunRecord:
    """One run's ``metrics.json`` (see the module docstring for the fields)."""

    status: str
    loss: str | None = None
    data: str | None = None
    model: str | None = None
    seed: int | None = None
    data_seed: int | None = None
    overrides: list[str] | None = None
    monitor: dict[str, Any] | None = None
    val: dict[str, float] | None = None
    test: dict[str, float] | None = None
    epochs: int | None = None
    data_info: dict[str, Any] | None = None
    wall_s: float | None = None
    timings: dict[str, float] | None = None
    config: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    job_num: int | None = None
    evaluated_checkpoint: str | None = None
    version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def reason(self) -> str:
        """Why the run did not finish, in one line: ``Type: message`` of its error, or the reader's reason
        for a ``missing``/``unreadable`` record; empty for a run without an error."""
        if self.status in (MISSING, UNREADABLE):
            return (self.error or {}).get("message", self.status)
        if self.error is None:
            return "" if self.ok else "?: no error recorded"
        return f"{self.error.get('type', '?')}: {self.error.get('message', '')}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the record: ``version`` first, then the fields that are not ``None``."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values = {"version": values.pop("version"), **values}
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """The record a ``metrics.json`` object describes; :class:`ValueError` saying what is wrong when it
        is of another shape."""
        if not isinstance(data, dict):
            raise ValueError(f"holds a JSON {_json_name(data)}, not an object")
        version = data.get("version", 1)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise ValueError(f"schema version {version!r}: this lossbench reads version {SCHEMA_VERSION}")
        if "status" not in data:
            raise ValueError("no status")
        if data["status"] not in WRITTEN:
            raise ValueError(f"status {data['status']!r} is not one of {', '.join(WRITTEN)}")
        known = {}
        for name, allowed in _json_types().items():
            if data.get(name) is None:
                continue
            value = data[name]
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                wanted = "number" if float in allowed else " or ".join(_JSON_NAMES[t] for t in allowed)
                raise ValueError(f"{name} is a JSON {_json_name(value)}, not {wanted}")
            known[name] = value
        if not all(isinstance(o, str) for o in known.get("overrides") or []):
            raise ValueError("overrides holds something other than strings")
        return cls(**known)


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "integer", float: "number"}


def _json_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)


@functools.cache
def _json_types() -> dict[str, tuple[type, ...]]:
    """Field name -> the Python types its JSON value may have (from the type hints; a float may be 3)."""
    found = {}
    for name, hint in get_type_hints(RunRecord).items():
        args = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
        allowed = tuple(get_origin(a) or a for a in args if a is not type(None))
        found[name] = (*allowed, int) if float in allowed else allowed
    return found


def write_record(record: RunRecord, run_dir: Path) -> Path:
    """Write ``record`` to ``run_dir/metrics.json`` atomically; return the file's path.

    The JSON goes into a temporary file in ``run_dir`` (fsynced), which then replaces ``metrics.json``:
    a crash or a failing write leaves the previous record as it was and no temporary file behind. Values
    JSON cannot hold (a path in a raw config) are written as their ``str``.
    """
    text = json.dumps(record.to_dict(), indent=2, default=str)
    return write_text_atomically(RunDir(run_dir).record, text)


def read_record(run_dir: Path) -> RunRecord:
    """The record in ``run_dir``; status ``missing`` (no ``metrics.json``) or ``unreadable`` (cut off,
    not JSON, another shape) with the reason in ``error["message"]`` when there is none to read."""
    path = RunDir(run_dir).record
    try:
        text = path.read_text()
    except FileNotFoundError:
        return _no_record(MISSING, f"no {RECORD_NAME} (the run crashed or was killed before it ended)")
    except (OSError, ValueError) as err:  # a directory, no permission, not UTF-8
        return _no_record(UNREADABLE, f"unreadable {RECORD_NAME}: {type(err).__name__}: {err}")
    try:
        data = json.loads(text)
    except ValueError as err:
        return _no_record(UNREADABLE, f"unreadable {RECORD_NAME}: cut off or not JSON ({err})")
    try:
        return RunRecord.from_dict(data)
    except ValueError as err:
        return _no_record(UNREADABLE, f"unreadable {RECORD_NAME}: {err}")


def _no_record(status: str, reason: str) -> RunRecord:
    return RunRecord(status, error={"type": status, "message": reason})
