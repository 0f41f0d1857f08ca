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
from pathlib import Path

from lossbench.record import RunRecord
from lossbench.run_dir import RunDir


def validated_epochs(path: Path, metric: str) -> set[int]:
    """The epochs with a value of ``metric`` in the CSV at ``path``."""
    with path.open(newline="") as fh:
        return {
            int(float(row["epoch"]))
            for row in csv.DictReader(fh)
            if row.get(metric) not in ("", None) and row.get("epoch") not in ("", None)
        }


def csv_problem(record: RunRecord, path: Path) -> str | None:
    """Why the run's CSV cannot be its curves' source (missing, or fewer validated epochs than the record's
    ``epochs``), or None."""
    config = record.config or {}
    loggers = config.get("logger") if isinstance(config.get("logger"), dict) else {}
    has_csv = any(str((node or {}).get("_target_", "")).endswith("CSVLogger") for node in loggers.values())
    metric = (record.monitor or {}).get("metric")
    if not has_csv or not record.epochs or (record.monitor or {}).get("best") is None or not metric:
        return None
    if not path.is_file():
        return f"{path} is missing"
    every = int((config.get("trainer") or {}).get("check_val_every_n_epoch") or 1)
    wanted = {e for e in range(record.epochs) if (e + 1) % every == 0}
    try:
        found = validated_epochs(path, metric)
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


def damaged(run_dir: Path, record: RunRecord) -> str | None:
    """The first damaged file of the finished run in ``run_dir``, in one line, or None."""
    files = RunDir(run_dir)
    problem = csv_problem(record, files.csv) or json_problem(files.labels)
    return problem or next((why for _, why in damaged_archives(run_dir)), None)


def set_aside(run_dir: Path) -> list[Path]:
    """Before a damaged run trains again from the start: rename its checkpoints folder to
    ``checkpoints.damaged`` (``_1``, ... when taken) and a damaged ``predictions.npz`` to
    ``predictions.npz.damaged``, so the new run writes whole files and nothing of the old one is deleted.
    Returns the new paths."""
    files = RunDir(run_dir)
    moved = [
        p.rename(p.with_name(p.name + ".damaged"))
        for p, _ in damaged_archives(run_dir)
        if p == files.predictions
    ]
    if files.checkpoints.is_dir():
        target = files.checkpoints.with_name("checkpoints.damaged")
        n = 0
        while target.exists():
            n += 1
            target = files.checkpoints.with_name(f"checkpoints.damaged_{n}")
        moved.append(files.checkpoints.rename(target))
    return moved
