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

from lossbench.overrides import override_list
from lossbench.packed.checkpoints import PackedCheckpoints, group_checkpoint, resume_replicas
from lossbench.packed.history import HISTORY_KEY
from lossbench.resume import Resumption, finished_run, read_checkpoint, requeued
from lossbench.run_dir import RunDir

if TYPE_CHECKING:
    from lossbench.packed.launcher import Job

log = logging.getLogger("lossbench")


def continuation(job: Job) -> str | dict[str, Any] | None:
    """How a job of a continued sweep (``resume=true``, or a requeued Slurm job) goes on: as
    :func:`continuation_of` its config and command-line overrides."""
    return continuation_of(job.cfg, override_list(job.sweep_config.hydra.overrides.task))


def continuation_of(cfg: Any, overrides: list[str]) -> str | dict[str, Any] | None:
    """How the run configured by ``cfg`` goes on when it is continued (``resume=true``, or a requeued
    Slurm job), as its run would (:class:`lossbench.resume.Resumption`): ``"finished"`` (its record is
    kept), the checkpoint it continues from (one a packed replica wrote), ``"ordinary"`` (a checkpoint an
    unpacked run wrote), or None: from the start (also every run that is not continued). ``overrides``:
    what its record and checkpoints name as its overrides."""
    if not (cfg.get("resume") or requeued()):
        return None
    if finished_run(Path(cfg.paths.output_dir), overrides) is not None:
        return "finished"  # its ordinary task says so, once
    run_dir = RunDir(cfg.paths.output_dir)  # an ordinary continuation says "resuming from" when it runs
    resumption = Resumption.prepare(cfg, run_dir, overrides, sweep_job=True, say=False)
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
    states = [resumed[job.num] for job in group] if group[0].num in resumed else None
    sweep_dir = Path(str(group[0].sweep_config.hydra.sweep.dir))
    with continued_group(module, checkpoints, states, [job.name for job in group], sweep_dir) as path:
        yield path


@contextmanager
def continued_group(
    module: Any,
    checkpoints: PackedCheckpoints,
    states: list[dict[str, Any]] | None,
    names: list[str],
    scratch: Path,
) -> Iterator[str | None]:
    """Each replica of ``module`` resumed from its run's checkpoint in ``states`` (all of one epoch; the
    runs are ``names``), and the group's checkpoint to continue from: a temporary file in ``scratch``,
    removed after. None, and nothing resumed, when ``states`` is None (the group starts from the
    beginning)."""
    if states is None:
        yield None
        return
    for name, state in zip(names, states, strict=True):
        log.info("%s continues from epoch %d", name, int(state["epoch"]) + 1)
    resume_replicas(module, states, checkpoints)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".packed-") as tmp:
        path = Path(tmp) / "group.ckpt"
        torch.save(group_checkpoint(module, states[0]), path)
        yield str(path)
