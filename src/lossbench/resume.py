"""Resuming a run: find its run dir again, keep its W&B run id, and keep its CSV free of stale rows.

``python train.py <overrides> resume=true`` continues the most recent run under ``outputs/`` whose
overrides (``resume`` aside) are the same and which has ``checkpoints/last.ckpt``. Hydra picks the run
dir through the ``lossbench_run_dir`` resolver in ``conf/hydra/default.yaml``, so the continued run writes
into the same directory as the original.
"""

from __future__ import annotations

import csv
import secrets
import string
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
WANDB_ID_FILE = "wandb_run_id"


def _plain_overrides(overrides: list[str]) -> list[str]:
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(("resume=", "hydra.run.dir=")))


def find_resumable_run(base: Path, overrides: list[str]) -> Path | None:
    """The newest ``base/<date>/<time>`` dir with ``last.ckpt`` that was started with ``overrides``."""
    wanted = _plain_overrides(overrides)
    candidates = sorted(base.glob(f"*/*/{LAST_CHECKPOINT}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for ckpt in candidates:
        run_dir = ckpt.parents[1]
        saved = run_dir / ".hydra" / "overrides.yaml"
        if saved.is_file() and _plain_overrides(yaml.safe_load(saved.read_text()) or []) == wanted:
            return run_dir
    return None


def run_dir_resolver(base: str, stamp: str, *, _root_: Any) -> str:
    """OmegaConf resolver for ``hydra.run.dir``: the run to resume when ``resume=true``, else a new dir."""
    if _root_.get("resume"):
        overrides = OmegaConf.to_container(_root_.hydra.overrides.task)
        found = find_resumable_run(Path(base), list(overrides))
        if found is not None:
            return str(found)
    return claim_run_dir(base, stamp)


#: (base, stamp) -> the dir this process claimed for it, so resolving ``hydra.run.dir`` twice agrees
_CLAIMED: dict[tuple[str, str], str] = {}


def claim_run_dir(base: str, stamp: str) -> str:
    """A new run dir ``base/stamp``, or ``base/stamp_1``, ``_2``, ... when another run took it first.

    Creating the directory is the claim (``mkdir`` is atomic), so two runs started in the same second get
    separate directories instead of writing into one.
    """
    key = (base, stamp)
    if key not in _CLAIMED:
        for n in range(1000):
            path = Path(base) / (stamp if n == 0 else f"{stamp}_{n}")
            try:
                path.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                continue
            _CLAIMED[key] = str(path)
            break
        else:
            raise FileExistsError(f"no free run dir for {base}/{stamp}: pass hydra.run.dir=<dir>")
    return _CLAIMED[key]


def wandb_run_id(output_dir: Path, ckpt_path: Path | None) -> str:
    """The W&B run id for a run writing to ``output_dir``, stored there as ``wandb_run_id``.

    Continuing from a checkpoint (``resume=true`` or ``ckpt_path=``) reuses the id stored in the
    checkpoint's run dir, so the W&B run continues too; otherwise the id is new.
    """
    stored = ckpt_path.parents[1] / WANDB_ID_FILE if ckpt_path is not None else None
    if stored is not None and stored.is_file():
        run_id = stored.read_text().strip()
    else:
        run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / WANDB_ID_FILE).write_text(run_id + "\n")
    return run_id


def checkpoint_epoch(path: Path) -> int:
    """The epoch during which a Lightning checkpoint was saved (loaded weights-only)."""
    import torch  # here, so that registering the run-dir resolver on ``import lossbench`` stays light

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])


def drop_csv_rows_after_epoch(metrics_csv: Path, epoch: int) -> int:
    """Remove rows logged after ``epoch`` (the resumed run logs them again); return how many."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    keep = [r for r in rows if not r.get("epoch") or float(r["epoch"]) <= epoch]
    if len(keep) != len(rows):
        with metrics_csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(keep)
    return len(rows) - len(keep)
