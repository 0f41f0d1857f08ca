"""Resuming a run: find its run dir again, keep its W&B run id, and keep its CSV free of stale rows.

``python train.py <overrides> resume=true`` continues the most recent run under ``outputs/`` whose
overrides (``resume`` aside) are the same and which has ``checkpoints/last.ckpt``. Hydra picks the run
dir through the ``lossbench_run_dir`` resolver in ``conf/hydra/default.yaml``, so the continued run writes
into the same directory as the original (:mod:`lossbench.run_dir_claim`).

A sweep continues with ``python train.py -m <its overrides> resume=true hydra.sweep.dir=<its dir>``: a
job whose ``metrics.json`` says ``ok`` is kept (:func:`finished_run`), a job with a ``last.ckpt``
continues from it, a job that never started starts. A requeued Slurm job (:func:`requeued`) resumes the
same way without ``resume=true``. Checkpoints carry the run's overrides (``OVERRIDES_KEY``), so a job never
continues another job's checkpoint.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError
from lossbench.integrity import damaged as damaged_file
from lossbench.integrity import logs_csv, move_aside, set_aside
from lossbench.overrides import override_difference, plain_overrides, same_run_overrides
from lossbench.record import FAILED, UNREADABLE, RunRecord, read_record
from lossbench.resume_files import drop_csv_rows_after_epoch, set_aside_later_checkpoints
from lossbench.run_dir import LAST_CHECKPOINT, RunDir

log = logging.getLogger("lossbench")

#: the checkpoint entry holding the overrides of the run that wrote it
OVERRIDES_KEY = "lossbench_overrides"
#: the run's ``data_info`` (as its record holds it, JSON) in each checkpoint: a stopped run's data units
DATA_INFO_KEY = "lossbench_data_info"
#: the checkpoint entry holding the validation metrics of the epoch it ends
VAL_KEY = "lossbench_val"


def requeued() -> bool:
    """True in a Slurm job that was requeued (preempted or timed out, then started again)."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def resumable_runs(base: Path) -> Iterator[tuple[RunDir, list[str]]]:
    """The ``base/<date>/<time>`` run dirs with a ``last.ckpt``, newest first, each with its overrides
    (one whose overrides file is missing or damaged is left out)."""
    for ckpt in sorted(base.glob(f"*/*/{LAST_CHECKPOINT}"), key=lambda p: p.stat().st_mtime, reverse=True):
        run_dir = RunDir(ckpt.parents[1])
        try:
            overrides = run_dir.overrides() if run_dir.has_overrides() else None
        except ValueError:  # a damaged overrides file: not the run asked for
            continue
        if overrides is not None:
            yield run_dir, overrides


def find_resumable_run(base: Path, overrides: list[str]) -> Path | None:
    """The newest ``base/<date>/<time>`` dir with ``last.ckpt`` that was started with ``overrides``."""
    wanted = plain_overrides(overrides)
    return next((run.path for run, given in resumable_runs(base) if plain_overrides(given) == wanted), None)


def wandb_run_id(output_dir: Path, ckpt_path: Path | None) -> str:
    """The W&B run id for a run writing to ``output_dir``, stored there as ``wandb_run_id``.

    Continuing from a checkpoint (``resume=true`` or ``ckpt_path=``) reuses the id stored in the
    checkpoint's run dir, so the W&B run continues too; otherwise the id is new.
    """
    stored = RunDir(ckpt_path.parents[1]).wandb_id if ckpt_path is not None else None
    if stored is not None and stored.is_file():
        return keep_wandb_run_id(output_dir, stored.read_text().strip())
    return new_wandb_run_id(output_dir)


def new_wandb_run_id(output_dir: Path) -> str:
    """A new W&B run id for the run writing to ``output_dir``, stored there as ``wandb_run_id``."""
    return keep_wandb_run_id(
        output_dir, "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    )


def keep_wandb_run_id(output_dir: Path, run_id: str) -> str:
    """Store ``run_id`` as the W&B run id of the run writing to ``output_dir``; return it."""
    target = RunDir(output_dir).wandb_id
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(run_id + "\n")
    return run_id


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint loaded weights-only (memory-mapped), or a :class:`ConfigError` naming it."""
    import torch  # here, so that registering the run-dir resolver on ``import lossbench`` stays light

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        int(checkpoint["epoch"])
    except pickle.UnpicklingError as err:
        if "weights only load failed" not in str(err).lower():
            raise unreadable_checkpoint(path, err) from None
        raise ConfigError(
            f"{path} holds Python objects besides tensors, which lossbench never unpickles (they can run "
            "code): it was not written by lossbench. Use a checkpoint of a lossbench run with "
            "ckpt_path=<file>, or start the run again without resume=true"
        ) from None
    except Exception as err:
        raise unreadable_checkpoint(path, err) from None
    return checkpoint


def unreadable_checkpoint(path: Path, err: BaseException) -> ConfigError:
    """The error for a checkpoint file torch cannot read: its reason (the first sentence of torch's) and
    what to do, whether the checkpoint was to be continued (``resume=true``, ``ckpt_path=``) or tested
    (``lossbench-eval``)."""
    text = " ".join(str(err).split())
    reason = (text.split(". ")[0] if ". " in text else text)[:200] or type(err).__name__
    return ConfigError(
        f"{path} cannot be read as a checkpoint ({reason}): it was cut off or damaged. Use another "
        "checkpoint of the run with ckpt_path=<file> (its best_epoch_*.ckpt or last.ckpt), or train the run "
        "again (without resume=true)"
    )


def checkpoint_val(path: Path) -> dict[str, float]:
    """The validation metrics of the epoch the checkpoint at ``path`` ends (:data:`VAL_KEY`, or the last
    epoch of a packed replica's history): what a run continued from it records as ``val`` when it has no
    epoch left to train."""
    from lossbench.packed.history import HISTORY_KEY

    checkpoint = read_checkpoint(path)
    values = checkpoint.get(VAL_KEY) or (checkpoint.get(HISTORY_KEY) or [{}])[-1]
    return {k: float(v) for k, v in sorted(values.items()) if k.startswith("val/")}


def checkpoint_epoch(path: Path) -> int:
    """The epoch during which a Lightning checkpoint was saved."""
    return int(read_checkpoint(path)["epoch"])


def _check_same_run(what: str, stored: list[str] | None, overrides: list[str]) -> None:
    if not same_run_overrides(stored, overrides):
        raise ConfigError(
            f"{what} belongs to a run with other overrides ({' '.join(plain_overrides(list(stored)))}): "
            "continue it with exactly the overrides it was started with, or start a new run dir (without "
            "resume=true; a sweep: a new hydra.sweep.dir)"
        )


def checked_checkpoint(ckpt_path: Any) -> Path:
    """``ckpt_path`` as a path to a readable checkpoint file, or a :class:`ConfigError` naming it."""
    path = Path(str(ckpt_path or ""))
    if not ckpt_path or not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist: pass an existing checkpoint file "
            f"(e.g. <run dir>/{LAST_CHECKPOINT}) or use resume=true"
        )
    read_checkpoint(path)
    return path


def resume_checkpoint(
    cfg: Any, output_dir: Path, overrides: list[str], *, sweep_job: bool = False
) -> Path | None:
    """The checkpoint a run continues from (``ckpt_path=``, ``resume=true`` or a Slurm requeue), checked.

    A sweep job or a requeued job without a ``last.ckpt`` starts from the beginning; a single run asked to
    ``resume=true`` without one is an error.
    """
    if cfg.get("ckpt_path"):
        return checked_checkpoint(cfg.ckpt_path)
    if not (cfg.get("resume") or requeued()):
        return None
    path = RunDir(output_dir).last_checkpoint
    if path.is_file():
        _check_same_run(str(path), read_checkpoint(path).get(OVERRIDES_KEY), overrides)
        return path
    if sweep_job or requeued():
        return None
    earlier = RunDir(output_dir)
    record = read_record(output_dir)
    if record.status == FAILED:  # it failed before its first checkpoint: resuming would fail again
        raise ConfigError(
            f"resume=true: the run in {output_dir} failed before its first epoch ended, so it has no "
            f"{LAST_CHECKPOINT} to continue ({(record.error or {}).get('message', 'see its metrics.json')}): "
            "fix what failed and run it again without resume=true"
        )
    found = earlier.csv.is_file() or earlier.checkpoints.is_dir() or earlier.record.is_file()
    where = str(output_dir) if found else "the outputs folder"
    stamped = re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}(_\d+)?", "/".join(output_dir.parts[-2:]))
    # a new dir outputs/<task_name>/<date>/<time> (not a hydra.run.dir given): the runs beside it
    nearest = None if found or not stamped else next(resumable_runs(output_dir.parents[1]), None)
    if nearest is not None:  # say how the newest run there differs
        raise ConfigError(
            f"resume=true found no earlier run with these overrides and a {LAST_CHECKPOINT} under "
            f"{output_dir.parents[1]}: the newest one there, {nearest[0].path}, was started "
            f"{override_difference(overrides, nearest[1])} (resume=true needs the overrides it was "
            "started with, a default spelled out or not as then): continue it with those, run without "
            "resume=true, or pass ckpt_path=<file>"
        )
    raise ConfigError(
        f"resume=true found no earlier run with the same overrides and a {LAST_CHECKPOINT} in {where} (a run "
        "stopped before its first epoch ended has none): run without resume=true, or pass ckpt_path=<file>"
    )


def finished_run(output_dir: Path, overrides: list[str]) -> dict[str, Any] | None:
    """The record of a sweep job that already finished in ``output_dir`` (``status: ok``) as its JSON
    object, else None (no record, a cut-off one, or a job that failed or was interrupted)."""
    return _finished(read_record(output_dir), output_dir, overrides)


def _finished(record: RunRecord, output_dir: Path, overrides: list[str]) -> dict[str, Any] | None:
    if not record.ok:
        return None
    _check_same_run(str(RunDir(output_dir).record), record.overrides, overrides)
    return record.to_dict()


@dataclass(frozen=True)
class Resumption:
    """Where a run starts, computed once before it builds anything.

    Attributes:
        checkpoint: the checkpoint ``fit`` continues from (``ckpt_path=``, ``resume=true``, a requeue),
            checked readable and of this run; ``None``: from the beginning.
        wandb_id: the W&B run id (the resumed run's own, so its W&B run continues); ``None`` off rank 0.
        finished: the record of a run that had already finished (``resume=true`` on it, or a finished
            job of a continued sweep): nothing is run and nothing is written again.
    """

    checkpoint: Path | None = None
    wandb_id: str | None = None
    finished: dict[str, Any] | None = None

    @classmethod
    def prepare(
        cls,
        cfg: Any,
        run_dir: RunDir,
        overrides: list[str],
        *,
        sweep_job: bool,
        fit: bool = True,
        say: bool = True,
    ) -> Resumption:
        """The resumption of the run configured by ``cfg`` in ``run_dir`` (``say``: log the checkpoint it
        continues from; the packed launcher says it its own way); on rank 0 it also stores the W&B
        id and drops the CSV rows of the epochs the run is about to train again.

        Without ``fit`` (testing a checkpoint) it is ``cfg.ckpt_path``, checked, and nothing else.
        """
        from lightning.pytorch.utilities import rank_zero_only

        if not fit:
            return cls(checked_checkpoint(cfg.get("ckpt_path")))
        record = read_record(run_dir.path) if cfg.get("resume") or requeued() else None
        done = None if record is None else _finished(record, run_dir.path, overrides)
        problem = None if done is None else damaged_file(run_dir.path, record)
        if done is not None and problem is None:
            log.info(
                "%s had finished: its record is kept as it is (without resume=true it trains again)",
                run_dir.path,
            )
            return cls(finished=done)
        if record is not None and record.status == UNREADABLE:
            problem = record.reason
        damaged = problem is not None
        if damaged:  # what the run reached is unknown: it trains again, its earlier rows and id dropped
            kept = [p.name for p in set_aside(run_dir.path)] if rank_zero_only.rank == 0 else []
            drop_csv_rows_after_epoch(run_dir.csv, -1)
            kept_as = f" (the earlier files are kept as {', '.join(kept)})" if kept else ""
            log.warning("%s: %s: the run is trained again from the start%s", run_dir.path, problem, kept_as)
        checkpoint = None if damaged else resume_checkpoint(cfg, run_dir.path, overrides, sweep_job=sweep_job)
        if rank_zero_only.rank != 0:
            return cls(checkpoint)
        if checkpoint is None and (cfg.get("resume") or requeued()) and not damaged:
            # stopped before its first last.ckpt, it starts again: its rows and best checkpoint of that start
            # go (rows logged twice; a second best_epoch_000-v1.ckpt), the checkpoints renamed, not deleted
            drop_csv_rows_after_epoch(run_dir.csv, -1)
            if run_dir.checkpoints.is_dir() and any(run_dir.checkpoints.iterdir()):
                move_aside(run_dir.checkpoints, "earlier")
        if checkpoint is not None:
            if say:
                log.info("resuming from %s", checkpoint)
            state = read_checkpoint(checkpoint)  # once, for the rows, the files and a packed replica's CSV
            drop_csv_rows_after_epoch(run_dir.csv, int(state["epoch"]), int(state.get("global_step", 0)))
            for partial in run_dir.checkpoints.glob(".*.ckpt.*.tmp"):  # a write the stop cut off
                partial.unlink(missing_ok=True)
            set_aside_later_checkpoints(run_dir, checkpoint, state)
            if not run_dir.csv.is_file() and logs_csv(cfg):  # a packed replica's: its rows are in it
                from lossbench.packed.history import restore_csv

                restore_csv(run_dir, state)
        return cls(checkpoint, wandb_run_id(run_dir.path, checkpoint))
