"""Whether a finished run's files are whole: a file cut off by a kill or a full disk is found before the
run is counted as finished (``lossbench compare``, a continued sweep).

* ``csv/metrics.csv``, the curves' source: it must hold every validated epoch the record's ``epochs``
  says (runs logged without the CSV logger, or without validation, have nothing to check);
* ``labels.json``: JSON;
* ``predictions.npz`` and the checkpoints: zip archives (NumPy's and PyTorch's formats), whose central
  directory, at the end of the file, is the first thing a cut lops off. Reading it needs neither torch nor
  the arrays, so the check stays cheap.
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossbench.record import RunRecord
from lossbench.run_dir import RunDir


def logs_csv(config: Mapping[str, Any]) -> bool:
    """Whether a run's config (composed or as its record holds it) has the CSV logger (``logger=default``
    or ``logger=csv``), which writes ``csv/metrics.csv``."""
    loggers = config.get("logger") or {}
    if not isinstance(loggers, Mapping):
        return False
    return any(str((node or {}).get("_target_", "")).endswith("CSVLogger") for node in loggers.values())


def read_curves(csv_path: Path) -> dict[str, list[tuple[int, float]]]:
    """Validation curves from the run's CSV: ``{"val/acc": [(epoch, value), ...]}`` (empty without one)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    if not csv_path.is_file():
        return curves
    with csv_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            epoch = row.get("epoch")
            for key, value in row.items():
                if key and key.startswith("val/") and value not in ("", None) and epoch not in ("", None):
                    curves.setdefault(key, []).append((int(float(epoch)), float(value)))
    return curves


def csv_problem(
    record: RunRecord, path: Path, curves: dict[str, list[tuple[int, float]]] | None = None
) -> str | None:
    """Why the run's CSV cannot be its curves' source (missing, or fewer validated epochs than the record's
    ``epochs``), or None. ``curves``: the CSV's :func:`read_curves`, when the caller has read them."""
    config = record.config or {}
    metric = (record.monitor or {}).get("metric")
    if not logs_csv(config) or not record.epochs or (record.monitor or {}).get("best") is None or not metric:
        return None
    if not path.is_file():
        return f"{path} is missing"
    every = int((config.get("trainer") or {}).get("check_val_every_n_epoch") or 1)
    wanted = {e for e in range(record.epochs) if (e + 1) % every == 0}
    try:
        found = {epoch for epoch, _ in (read_curves(path) if curves is None else curves).get(metric, [])}
    except (ValueError, csv.Error) as err:
        return f"{path} is damaged ({err})"
    if not wanted <= found:
        return f"{path} holds {len(found & wanted)} of the {len(wanted)} validated epochs the record has"
    return None


def zip_problem(path: Path) -> str | None:
    """Why the zip archive at ``path`` (``.npz``, ``.ckpt``) is not whole, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"{path} is cut off or damaged ({err})"
    return None


def damaged_archives(run_dir: Path) -> list[tuple[Path, str]]:
    """The run's zip archives (predictions, checkpoints) that are not whole, each with why."""
    files = RunDir(run_dir)
    archives = [files.predictions] if files.predictions.is_file() else []
    if files.checkpoints.is_dir():
        archives += sorted(files.checkpoints.glob("*.ckpt"))
    return [(path, why) for path in archives if (why := zip_problem(path)) is not None]


def json_problem(path: Path) -> str | None:
    """Why the JSON file at ``path`` (``labels.json``) cannot be read, or None (also when it is absent)."""
    if not path.is_file():
        return None
    try:
        json.loads(path.read_text())
    except (ValueError, OSError) as err:
        return f"{path} is cut off or damaged ({err})"
    return None


def damaged(
    run_dir: Path, record: RunRecord, curves: dict[str, list[tuple[int, float]]] | None = None
) -> str | None:
    """The first damaged file of the finished run in ``run_dir``, in one line, or None (``curves``: its
    CSV's :func:`read_curves`, when the caller has read them)."""
    files = RunDir(run_dir)
    problem = csv_problem(record, files.csv, curves) or json_problem(files.labels)
    return problem or next((why for _, why in damaged_archives(run_dir)), None)


def set_aside(run_dir: Path) -> list[Path]:
    """Before a damaged run trains again from the start: rename its checkpoints folder to
    ``checkpoints.damaged`` (``_1``, ... when taken) and a damaged ``predictions.npz`` to
    ``predictions.npz.damaged``, so the new run writes whole files and nothing of the old one is deleted.
    Returns the new paths."""
    files = RunDir(run_dir)
    moved = []
    predictions = files.predictions
    if predictions.is_file() and zip_problem(predictions) is not None:
        moved.append(predictions.rename(predictions.with_name(predictions.name + ".damaged")))
    if files.checkpoints.is_dir():
        moved.append(move_aside(files.checkpoints, "damaged"))
    return moved


def move_aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` to ``<name>.<suffix>`` (``<name>.<suffix>_1``, ... when taken); the new path."""
    target, n = path.with_name(f"{path.name}.{suffix}"), 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{suffix}_{n}")
    return path.rename(target)
