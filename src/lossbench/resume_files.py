"""What a run continued from a checkpoint does to the files its stopped part left: the CSV rows logged after
the checkpoint's epoch are dropped (the continued run logs them again), and checkpoint files the checkpoint
does not know (written after it) are set aside."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lossbench.atomic_files import write_csv_atomically
from lossbench.integrity import move_aside
from lossbench.run_dir import RunDir


def set_aside_later_checkpoints(run_dir: RunDir, checkpoint: Path, state: dict[str, Any]) -> list[Path]:
    """Rename (``*.earlier``) the checkpoint files of ``run_dir`` that the ``checkpoint`` a run continues
    from (its loaded ``state``) does not know: a best checkpoint written after it, by a stop between the
    best and the last writes. Kept there, it would stay beside the run's real best, and a new best of its
    epoch would be named ``-v1``."""
    states = state.get("callbacks") or {}
    known = {Path(checkpoint).name}
    for state in states.values():
        if isinstance(state, dict):
            known |= {Path(str(p)).name for p in (state.get("best_k_models") or {})}
            known |= {
                Path(str(state[k])).name for k in ("best_model_path", "last_model_path") if state.get(k)
            }
    later = [p for p in run_dir.checkpoints.glob("*.ckpt") if p.name not in known]
    return [move_aside(p, "earlier") for p in later]


def drop_csv_rows_after_epoch(metrics_csv: Path, epoch: int, step: int = 0) -> int:
    """Remove the rows logged after the checkpoint of ``epoch`` at global step ``step`` (the resumed run
    logs them again); return how many. A row without an epoch (a callback logging to the loggers itself,
    as ``LearningRateMonitor`` does, at the step of the next optimizer step) is kept if its step is before
    ``step``; ``epoch=-1, step=0`` removes every row. A last line without its line end (an append a kill
    cut off, whose epoch may read as another) is removed too."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        text = f.read()
    cut = bool(text) and not text.endswith("\n") and "\r\n" in text  # the csv module ends lines so
    lines = text.splitlines(keepends=True)[: -1 if cut else None]
    reader = csv.DictReader(io.StringIO("".join(lines), newline=""))
    fields, rows = reader.fieldnames or [], list(reader)

    def before(row: dict[str, str]) -> bool:
        if row.get("epoch"):
            return float(row["epoch"]) <= epoch
        return bool(row.get("step")) and float(row["step"]) < step

    keep = [r for r in rows if before(r)]
    if len(keep) != len(rows) or cut:  # whole or not at all: a kill now leaves the rows as they were
        write_csv_atomically(metrics_csv, fields, keep)  # a header cut off: no header
    return len(rows) - len(keep) + cut
