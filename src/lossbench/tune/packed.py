"""Runs of ``lossbench tune`` and ``lossbench advise`` trained packed (:mod:`lossbench.packed`): several
runs that share data, split, model and trainer train as one packed model, each replica exactly as its own
run, and each writes the run dir its own run writes. Three kinds of runs are packed:

- a batch of trials of one loss, asked together from its study (``--pack`` at a time; the sampler treats
  the trials asked before one as running, Optuna's ``constant_liar``);
- a round of trials or final runs of ``advise``, one run of each loss;
- the final runs of tuned losses (:mod:`lossbench.tune.final`), one per loss and seed.

Runs that cannot be packed (:func:`lossbench.packed.packing_problems`: a model without a packed version,
pruning, ...) train one by one, after one line saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig

from lossbench.errors import ConfigError, RunInterrupted, one_line
from lossbench.signals import raise_if_stopped
from lossbench.tune import study as st
from lossbench.tune.jobs import compose_job, quiet

log = logging.getLogger("lossbench")

#: per (``--out``, loss): why its trials cannot be packed ("" when they can), said once
_UNPACKABLE: dict[tuple[str, str], str] = {}
#: the lines :func:`say_once` has said
_SAID: set[str] = set()


def packing_problem(cfgs: Sequence[DictConfig]) -> str:
    """Why the runs ``cfgs`` cannot train as one packed model ("" when they can)."""
    from lossbench.packed import packing_problems

    problems = packing_problems(cfgs)
    return problems[0] if problems else ""


def train_packed_runs(
    jobs: Sequence[tuple[DictConfig, list[str]]],
    what: str,
    states: list[dict[str, Any]] | None = None,
    names: list[str] | None = None,
) -> list[tuple[dict[str, Any] | None, str | None]] | None:
    """Train the runs ``jobs`` (each a composed config and the overrides its record names) as one packed
    model and write each one's run dir; per run its record (None: it failed) and its error. None when they
    cannot be packed, or their packed training failed (said in one line: they are to run one by one).
    ``states``: the packed replicas' checkpoints the runs (``names``) continue from, all of one epoch;
    None: they start from the beginning."""
    raise_if_stopped()
    cfgs = [cfg for cfg, _ in jobs]
    problem = packing_problem(cfgs)
    if problem:
        say_once(f"{what}: they train one by one ({problem})")
        return None
    from lossbench.packed.continuation import continued_group
    from lossbench.packed.fit import train_group
    from lossbench.packed.replicas import ReplicaError
    from lossbench.packed.run_files import write_replica_files

    scratch = Path(str(cfgs[0].paths.output_dir)).parent

    def start(module: Any, checkpoints: Any) -> AbstractContextManager[str | None]:
        return continued_group(module, checkpoints, states, names or [what] * len(jobs), scratch)

    try:
        with quiet():
            trained = train_group(cfgs, [given for _, given in jobs], start)
    except RunInterrupted:
        raise
    except ReplicaError as err:  # that run refuses its config or data: as it does trained alone
        raise err.error from None
    except Exception as err:  # as the packed launcher does: the runs go the ordinary way
        if not isinstance(err, ConfigError):
            log.exception("packed training of %d %s failed", len(jobs), what)
        say_once(f"{what}: they train one by one: packed training failed: {one_line(err)}")
        return None
    module, data, results = trained.module, trained.data, trained.results
    return [
        (
            write_replica_files(cfg, module, data, k, results[k], trained.wall_s, given),
            results[k].get("error"),
        )
        for k, (cfg, given) in enumerate(jobs)
    ]


def say_once(line: str) -> None:
    """Log ``line`` the first time this process says it (a reason repeated every round says nothing new)."""
    if line not in _SAID:
        _SAID.add(line)
        log.info("%s", line)


def batch_size(plan: st.Plan, loss: str, monitor: tuple[str, str]) -> int:
    """How many trials of ``loss`` to ask at once: ``plan.pack``, or 1 when they would not be packed
    (pruning follows each trial's own curve; a model without a packed version), said once per loss."""
    if plan.pack == 1:
        return 1
    key = (str(plan.out), loss)
    if key not in _UNPACKABLE:
        cfg = compose_job([*plan.overrides, f"loss={loss}"], plan.out / "trials", monitor, "probe")
        problem = "--prune decides per trial" if plan.prune else packing_problem([cfg])
        _UNPACKABLE[key] = problem
        if problem:
            say_once(f"tune {loss}: its trials train one by one ({problem})")
    return 1 if _UNPACKABLE[key] else plan.pack


def run_trials(plan: st.Plan, monitor: tuple[str, str], asked: Sequence[tuple[str, optuna.Trial]]) -> None:
    """Train the trials ``asked`` (each with its loss) and tell each its study: packed when there are two
    or more and they can be, else one by one."""
    if len(asked) == 1 or plan.prune:
        for loss, trial in asked:
            st.run_trial(plan, loss, monitor, trial)
        return
    jobs: list[st.TrialJob] = []
    prepared = 0
    try:
        for loss, trial in asked:
            job = st.prepare_trial(plan, loss, monitor, trial, jobs)
            prepared += 1
            if job is not None:
                jobs.append(job)
        outcomes = (
            train_packed_runs([(job.cfg, job.overrides) for job in jobs], "trials") if len(jobs) > 1 else None
        )
    except BaseException as err:  # none is left running: each is queued again after a stop
        for job in jobs:
            st.abandon(job, err)
        for _, trial in asked[prepared:]:
            st.abandon_trial(trial, err)
        raise
    if outcomes is None:
        for i, job in enumerate(jobs):
            try:
                st.train_trial(plan, job, monitor)
            except BaseException as err:
                for unstarted in jobs[i + 1 :]:
                    st.abandon(unstarted, err)
                raise
        return
    for job, (summary, error) in zip(jobs, outcomes, strict=True):
        if summary is None:
            st.diverged(job, error or "the replica stopped")
        else:
            job.head += " (packed)"
            st.tell(job, summary)
