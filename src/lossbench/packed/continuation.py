"""How the jobs of a continued packed sweep (``resume=true``, or a requeued Slurm job) go on, each as its
run would (:class:`lossbench.resume.Resumption`): a finished job keeps its record, a packed replica's job
continues its packed group from its own ``last.ckpt``, and a job whose checkpoint an unpacked run wrote
continues the ordinary way."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lossbench.packed.checkpoints import PackedCheckpoints, group_checkpoint, resume_replicas
from lossbench.packed.history import HISTORY_KEY
from lossbench.resume import Resumption, finished_run, read_checkpoint, requeued
from lossbench.run_dir import RunDir

if TYPE_CHECKING:
    from lossbench.packed.launcher import Job

log = logging.getLogger("lossbench")


def continuation(job: Job) -> str | dict[str, Any] | None:
    """How a job of a continued sweep (``resume=true``, or a requeued Slurm job) goes on, as its run would
    (:class:`lossbench.resume.Resumption`): ``"finished"`` (its record is kept), the checkpoint it
    continues from (one a packed replica wrote), ``"ordinary"`` (a checkpoint an unpacked run wrote), or
    None: from the start (also every job of a sweep that is not continued)."""
    if not (job.cfg.get("resume") or requeued()):
        return None
    overrides = list(job.sweep_config.hydra.overrides.task)
    if finished_run(Path(job.cfg.paths.output_dir), overrides) is not None:
        return "finished"  # its ordinary task says so, once
    resumption = Resumption.prepare(job.cfg, RunDir(job.cfg.paths.output_dir), overrides, sweep_job=True)
    if resumption.checkpoint is None:
        return None
    checkpoint = read_checkpoint(resumption.checkpoint)
    return checkpoint if HISTORY_KEY in checkpoint else "ordinary"


@contextmanager
def group_start(
    module: Any, checkpoints: PackedCheckpoints, group: list[Job], resumed: dict[int, dict[str, Any]]
) -> Iterator[str | None]:
    """The group's checkpoint to continue from (a temporary file, removed after), with each replica
    resumed from its own; None when the group starts from the beginning."""
    if group[0].num not in resumed:
        yield None
        return
    for job in group:
        log.info("%s continues from epoch %d", job.name, int(resumed[job.num]["epoch"]) + 1)
    resume_replicas(module, [resumed[job.num] for job in group], checkpoints)
    sweep_dir = Path(str(group[0].sweep_config.hydra.sweep.dir))
    with tempfile.TemporaryDirectory(dir=sweep_dir, prefix=".packed-") as tmp:
        path = Path(tmp) / "group.ckpt"
        torch.save(group_checkpoint(module, resumed[group[0].num]), path)
        yield str(path)
