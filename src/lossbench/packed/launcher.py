"""What ``hydra/launcher=packed`` does with a sweep's jobs: compose each, group those that can be packed,
train each group as one packed model in this process and give every job its ordinary run dir.

For each job the launcher composes its config as Hydra's basic launcher does (the sweep config with the
job's overrides, ``hydra.job.num``), then groups the jobs :func:`~lossbench.packed.packing_problems`
allows together, at most ``max_pack`` per group. A group is trained by
:func:`~lossbench.packed.train_packed`; then each of its jobs goes through ``hydra.core.utils.run_job``
with a task function that writes the replica's run dir (:func:`~lossbench.packed.run_files.
write_replica_run`), so Hydra makes the job dir (``<sweep dir>/<job num>``), its ``.hydra/`` files and its
log, and runs its job callbacks, as for any job. A job that cannot be packed, or is alone in its group,
runs through ``run_job`` with the ordinary task function, after one log line saying why.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from lossbench.config import as_run
from lossbench.errors import ConfigError, RunInterrupted, exit_status, one_line
from lossbench.logs import only_warnings
from lossbench.overrides import override_list
from lossbench.packed.continuation import continuation, group_start
from lossbench.packed.fit import train_group
from lossbench.packed.memory import UnmeasuredReplica, memory_limits
from lossbench.packed.packable import group_key, packing_problems
from lossbench.packed.replicas import ReplicaError
from lossbench.packed.run_files import guarded, recorded_stop, write_replica_run
from lossbench.sweep import ending_when_stopped
from lossbench.sweep_jobs import planned_size

log = logging.getLogger("lossbench")


@dataclass
class Job:
    """One job of the sweep: its number, overrides, its config with Hydra's node (what ``run_job`` gets)
    and its task config (what the task function gets, ``paths.output_dir`` its job dir)."""

    num: int
    overrides: list[str]
    sweep_config: DictConfig
    cfg: DictConfig

    @property
    def name(self) -> str:
        return f"job #{self.num} ({' '.join(filter_overrides(self.overrides))})"


def compose_job(hydra_context: HydraContext, config: DictConfig, overrides: Sequence[str], num: int) -> Job:
    """Job ``num`` of the sweep ``config`` with ``overrides``, composed as the basic launcher composes it."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = num
        sweep_config.hydra.job.num = num
    task = copy.deepcopy(sweep_config)
    HydraConfig.instance().set_config(task)
    job_dir = Path(str(OmegaConf.select(task, "hydra.sweep.dir"))) / str(
        OmegaConf.select(task, "hydra.sweep.subdir")
    )
    return Job(num, list(overrides), sweep_config, as_run(task, job_dir.absolute()))


def group_jobs(
    jobs: Sequence[Job],
    max_pack: int | Callable[[Job], int],
    resumed: dict[int, dict[str, Any]] | None = None,
) -> tuple[list[list[Job]], dict[int, str]]:
    """The groups of jobs trained packed (each of two or more jobs, in job order), and for every other job
    the reason it runs the ordinary way. ``max_pack``: the most jobs of a group, or a function of its first
    job giving it; ``resumed``: the checkpoints jobs continue from (a group's jobs continue from the same
    epoch)."""
    most = max_pack if callable(max_pack) else lambda job: max_pack
    limit = "" if callable(max_pack) else f", at most hydra.launcher.max_pack={max_pack}"
    groups: list[list[Job]] = []
    alone: dict[int, str] = {}
    keys: dict[int, dict[str, Any]] = {}
    rooms: dict[int, int] = {}  # per group (its first job's number): the most jobs it holds, asked once
    for job in jobs:
        problems = packing_problems([job.cfg])
        if problems:
            alone[job.num] = "; ".join(problems)
            continue
        epoch = int((resumed or {}).get(job.num, {}).get("epoch", -1))
        keys[job.num] = {**group_key(job.cfg), "from_epoch": epoch}  # equal keys: packed together
        for group in groups:
            first = group[0]
            if keys[first.num] != keys[job.num]:
                continue
            if first.num not in rooms:
                try:
                    rooms[first.num] = most(first)
                except UnmeasuredReplica as err:  # it fails alone, naming why; this job leads the group
                    alone[first.num] = f"its replica could not be built ({err})"
                    group[0] = job
                    break
            if len(group) < rooms[first.num]:
                group.append(job)
                break
        else:
            groups.append([job])
    for group in [g for g in groups if len(g) == 1]:
        groups.remove(group)
        alone[group[0].num] = (
            "no other job is left to pack it with (a packed model holds jobs of the same data, data_seed, "
            f"model, trainer and callbacks{limit})"
        )
    return groups, alone


def launch_packed(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    *,
    max_pack: int | None = None,
) -> list[JobReturn]:
    """Run the jobs ``job_overrides`` (numbered from ``initial_job_idx``) packed where they can be; their
    ``JobReturn`` in job order, each carrying its best monitored value as the ordinary task returns it.
    ``max_pack``: the most jobs of one packed model; None: as many as the free memory holds
    (:func:`~lossbench.packed.memory.memory_limits`). As Hydra's basic launcher, it leaves the Hydra config
    of the last job it ran set."""
    if max_pack is not None and max_pack < 1:
        err = ConfigError(f"hydra.launcher.max_pack={max_pack}: give at least 1, or null to fit free memory")
        log.error("%s: %s", type(err).__name__, err)
        raise SystemExit(exit_status(err))
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    log.info(
        "Launching %d jobs, packed where they can be (max_pack=%s)",
        len(job_overrides),
        "from free memory" if max_pack is None else max_pack,
    )
    # the command's start is over: a stop now ends the sweep with its table (composing, training packed,
    # writing run dirs)
    with ending_when_stopped(Path(str(config.hydra.sweep.dir))):
        return run_jobs(hydra_context, task_function, config, job_overrides, initial_job_idx, max_pack)


def run_jobs(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    max_pack: int | None,
) -> list[JobReturn]:
    """:func:`launch_packed`'s work: compose the jobs, run the finished and unpackable ones the ordinary
    way and each group packed; their ``JobReturn`` in job order."""
    jobs = [
        compose_job(hydra_context, config, overrides, initial_job_idx + i)
        for i, overrides in enumerate(job_overrides)
    ]
    returns: dict[int, JobReturn] = {}
    resumed: dict[int, dict[str, Any]] = {}
    for job in jobs:
        how = continuation(job)
        if how == "finished":  # the ordinary task keeps its record as it is
            returns[job.num] = run_one(hydra_context, config, job, task_function)
        elif how == "ordinary":
            log.info("%s runs the ordinary way: it continues from an unpacked run's checkpoint", job.name)
            returns[job.num] = run_one(hydra_context, config, job, task_function)
        elif isinstance(how, dict):
            resumed[job.num] = how
    jobs = [job for job in jobs if job.num not in returns]
    if max_pack is None:
        limit = memory_limits()

        def limit_of(job: Job) -> int:  # measured in the job's own Hydra config, as its run builds
            HydraConfig.instance().set_config(job.sweep_config)
            return limit(job.cfg)

        groups, alone = group_jobs(jobs, limit_of, resumed)
    else:
        groups, alone = group_jobs(jobs, max_pack, resumed)
    units: list[list[Job]] = [*groups, *([job] for job in jobs if job.num in alone)]
    said: set[str] = set()
    for unit in sorted(units, key=lambda u: u[0].num):
        if unit[0].num in alone:
            job = unit[0]
            say_alone(job, jobs, alone, said)
            returns[job.num] = run_one(hydra_context, config, job, task_function)
        else:
            returns.update(run_group(hydra_context, config, unit, task_function, resumed))
    return [returns[i] for i in sorted(returns)]


def say_alone(job: Job, jobs: Sequence[Job], alone: dict[int, str], said: set[str]) -> None:
    """Say why ``job`` runs the ordinary way, once per reason (``said``: the reasons said): the first job
    with a reason names every job of the sweep with the same one."""
    reason = alone[job.num]
    if reason in said:
        return
    said.add(reason)
    same = [other for other in jobs if alone.get(other.num) == reason]
    if len(same) == 1:
        log.info("%s runs the ordinary way: %s", job.name, reason)
    else:
        log.info("jobs %s run the ordinary way: %s", ", ".join(f"#{o.num}" for o in same), reason)


def run_one(
    hydra_context: HydraContext, config: DictConfig, job: Job, task_function: Callable[[DictConfig], Any]
) -> JobReturn:
    """``run_job`` on ``job`` with ``task_function``, then Hydra's own logging again (as the basic
    launcher does after each job)."""
    ret = run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=job.sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return ret


def run_group(
    hydra_context: HydraContext,
    config: DictConfig,
    group: list[Job],
    task_function: TaskFunction,
    resumed: dict[int, dict[str, Any]],
) -> dict[int, JobReturn]:
    """Train ``group`` as one packed model (continuing from its jobs' checkpoints in ``resumed``), each
    replica writing its run's checkpoints, and write each job's run dir; when the group cannot be built
    or its training raises, its jobs run the ordinary way, each after one line saying why."""
    names = ", ".join(f"#{job.num}" for job in group)

    def start(module: Any, checkpoints: Any) -> Any:  # once every replica is built
        log.info("jobs %s train packed as one model (%d replicas)", names, len(group))
        return group_start(module, checkpoints, group, resumed)

    failure: Exception | None = None
    try:
        with only_warnings():  # Lightning's start-up lines: no job's log file holds the group's Trainer
            trained = train_group(
                [job.cfg for job in group],
                [override_list(job.sweep_config.hydra.overrides.task) for job in group],
                start,
                [job.sweep_config for job in group],
            )
    except RunInterrupted as err:  # each job's run dir says where it was stopped, as an ordinary job's does
        for job in group:
            run_one(hydra_context, config, job, recorded_stop(err))
        raise
    except Exception as err:
        if not isinstance(err, ConfigError):
            log.exception("packed training of jobs %s failed", names)
        failure = err
    if isinstance(failure, ReplicaError):  # that job fails the ordinary way; the others are packed again
        refused = group[failure.index]
        log.info("%s runs the ordinary way: %s", refused.name, one_line(failure.error))
        returns = {refused.num: run_one(hydra_context, config, refused, task_function)}
        rest = [job for job in group if job is not refused]
        if len(rest) > 1:
            returns.update(run_group(hydra_context, config, rest, task_function, resumed))
        for job in rest[:1] if len(rest) == 1 else []:
            log.info("%s runs the ordinary way: the job it was to be packed with was refused", job.name)
            returns[job.num] = run_one(hydra_context, config, job, task_function)
        return returns
    if failure is not None:
        returns = {}
        for job in group:
            log.info("%s runs the ordinary way: packed training failed: %s", job.name, one_line(failure))
            returns[job.num] = run_one(hydra_context, config, job, task_function)
        return returns
    sweep_size = planned_size(Path(str(config.hydra.sweep.dir)))
    returns, stops = {}, []
    for k, job in enumerate(group):

        def write(cfg: DictConfig, k: int = k) -> float:
            return write_replica_run(
                cfg, trained.module, trained.data, k, trained.results[k], trained.wall_s, sweep_size
            )

        returns[job.num] = run_one(hydra_context, config, job, guarded(write, stops))
        if stops:  # no later job's run dir is written: continuing the sweep writes them
            raise stops[0]
    return returns
