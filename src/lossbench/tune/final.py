"""The final runs of a tuned loss: its best trial's parameters trained again for each seed and tested,
in ``DIR/final/<loss>/<seed>``.

A final run that finished with the current tuned parameters (its ``tuned.json``) and the plan's overrides
(those its record names) is kept. One that a stopped command left unfinished, with its
``checkpoints/last.ckpt``, the same tuned parameters and the same overrides (those the checkpoint names),
continues from that checkpoint (``resume=true``, :class:`lossbench.resume.Resumption`): nothing it
trained is trained again.
What any other earlier run left in the run dir is set aside (renamed, not deleted) before the run starts.
Final runs are packed where they can be (:mod:`lossbench.tune.packed`), up to ``--pack`` at a time, and
runs that continue from a packed replica's checkpoint are packed again with the others of the same epoch;
the rest train one by one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lossbench.errors import ConfigError, NonFiniteLossError, one_line
from lossbench.integrity import move_aside
from lossbench.overrides import same_run_overrides
from lossbench.record import read_record
from lossbench.resume import OVERRIDES_KEY, read_checkpoint
from lossbench.run_dir import RunDir
from lossbench.tune import space as sp
from lossbench.tune.jobs import compose_job, job_line, run_job, tags_with
from lossbench.tune.packed import train_packed_runs
from lossbench.tune.plan import Plan

log = logging.getLogger("lossbench")


def final_dir(plan: Plan, loss: str, seed: int) -> Path:
    """The run dir of the final run of ``loss`` with ``seed``."""
    return plan.out / "final" / loss / str(seed)


def planned_runs(plan: Plan) -> list[Any]:
    """The final runs the report of ``plan`` compares (:class:`~lossbench.report.collect.ReportRun`): those
    of its losses and its first ``plan.seeds`` seeds, not the others an earlier command in the same
    ``--out`` left under ``final/``."""
    from lossbench.report.collect import collect_local
    from lossbench.report.variants import assign_variants

    wanted = {final_dir(plan, loss, seed).resolve() for loss in plan.losses for seed in range(plan.seeds)}
    runs = [r for r in collect_local(plan.out / "final") if Path(r.run_dir).resolve() in wanted]
    return assign_variants(runs)  # labelled among themselves: the others may hold other tuned parameters


def same_params(run_dir: Path, params: dict[str, Any]) -> bool:
    """Whether the final run in ``run_dir`` was trained with the tuned ``params`` (its ``tuned.json``)."""
    try:
        return json.loads(RunDir(run_dir).tuned.read_text()) == json.loads(json.dumps(params))
    except (OSError, ValueError):  # none, or one cut off by a kill
        return False


def final_overrides(plan: Plan, loss: str, seed: int) -> list[str]:
    """The overrides the final run of ``loss`` with ``seed`` is given (its record and checkpoints name
    them)."""
    return [*plan.overrides, f"loss={loss}", f"seed={seed}"]


def finished(run_dir: Path, params: dict[str, Any], overrides: list[str]) -> bool:
    """A final run to keep: finished, with the tuned ``params`` and the ``overrides`` it is given (another
    tuned configuration's, or one of other overrides, left by an earlier command in the same ``--out``, is
    set aside and trained again)."""
    record = read_record(run_dir)
    return record.ok and same_params(run_dir, params) and same_run_overrides(record.overrides, overrides)


def continues(run_dir: Path, params: dict[str, Any], overrides: list[str]) -> bool:
    """Whether the final run in ``run_dir`` continues from its ``last.ckpt``: one left unfinished by a
    stopped command, trained with the same tuned ``params`` (its ``tuned.json``) and ``overrides`` (those
    the checkpoint names), its checkpoint readable."""
    if not (RunDir(run_dir).last_checkpoint.is_file() and same_params(run_dir, params)):
        return False
    try:
        checkpoint = read_checkpoint(RunDir(run_dir).last_checkpoint)
    except ConfigError as err:
        log.warning("%s: it trains again from the start", one_line(err))
        return False
    return same_run_overrides(checkpoint.get(OVERRIDES_KEY), overrides)


#: what a final run writes in its run dir; an earlier run's are set aside before another one starts there
RUN_FILES = ("checkpoints", "csv", "metrics.json", "predictions.npz")


def set_aside_earlier(run_dir: Path) -> list[Path]:
    """Before a final run trains from the start in ``run_dir``: rename what an earlier run left there
    (:data:`RUN_FILES` and its ``tuned.json``; another tuned configuration's, or one that cannot be
    continued) with the suffix ``.earlier`` (``.earlier_1``, ... when taken), so the new run neither
    continues from its checkpoint nor adds to its rows, and nothing of it is deleted. Returns the new
    paths (none when it left nothing but ``tuned.json``)."""
    if not any((run_dir / name).exists() for name in RUN_FILES):
        return []
    paths = [*(run_dir / name for name in RUN_FILES), RunDir(run_dir).tuned]
    return [move_aside(path, "earlier") for path in paths if path.exists()]


def final_job(
    plan: Plan, loss: str, seed: int, params: dict[str, Any], monitor: tuple[str, str]
) -> tuple[DictConfig, list[str]]:
    """The config of the final run of ``loss`` with ``seed`` (its run dir made, ``tuned.json`` written in
    it; ``resume=true`` when it continues, :func:`continues`) and the overrides its record names: the
    report groups runs by them, and the tuned values are the loss's, not a setting."""
    run_dir = final_dir(plan, loss, seed)
    given = final_overrides(plan, loss, seed)
    again = continues(run_dir, params, given)
    if not again and (moved := set_aside_earlier(run_dir)):
        kept = ", ".join(p.name for p in moved)
        log.info("final %s: seed %d starts from the beginning; the earlier run's files: %s", loss, seed, kept)
    run_dir.mkdir(parents=True, exist_ok=True)
    RunDir(run_dir).tuned.write_text(json.dumps(params, indent=2))
    overrides = [*given, *sp.overrides(params), tags_with("final"), *(["resume=true"] if again else [])]
    return compose_job(overrides, run_dir, monitor, task_name=f"tune_{plan.out.name}"), given


def final_run(plan: Plan, loss: str, seed: int, params: dict[str, Any], monitor: tuple[str, str]) -> Path:
    """Train and test the tuned configuration of ``loss`` with ``seed`` (kept when already finished;
    continued from its ``last.ckpt`` when a stopped command left it unfinished)."""
    run_dir = final_dir(plan, loss, seed)
    if finished(run_dir, params, final_overrides(plan, loss, seed)):
        return run_dir
    cfg, given = final_job(plan, loss, seed, params, monitor)
    summary = run_job(cfg, [], overrides=given)
    log.info("final %s: seed %d (%d of %d): %s", loss, seed, seed + 1, plan.seeds, job_line(summary))
    return run_dir


def starts(jobs: dict[tuple[str, int], tuple[DictConfig, list[str]]]) -> dict[tuple[str, int], Any]:
    """Per final run of ``jobs``, where it starts: None (the beginning), the packed replica's checkpoint
    it continues from, or ``"ordinary"`` (it continues from an unpacked run's checkpoint, on its own)."""
    from lossbench.packed.continuation import continuation_of

    return {key: continuation_of(cfg, given) for key, (cfg, given) in jobs.items()}


def packed_final_runs(
    plan: Plan, params: dict[str, dict[str, Any]], seeds: Sequence[int], monitor: tuple[str, str]
) -> set[tuple[str, int]]:
    """Train the unfinished final runs of every loss of ``params`` (its tuned parameters) and seed of
    ``seeds``, up to ``plan.pack`` at a time as one packed model where they can be (runs that continue,
    with the others continuing from the same epoch); the ``(loss, seed)`` runs now finished (the others
    are to run one by one). A replica whose loss diverged raises :class:`NonFiniteLossError` once its
    group's run dirs are written, as its run trained alone does."""
    pending = [
        (loss, seed)
        for seed in seeds
        for loss in params
        if not finished(final_dir(plan, loss, seed), params[loss], final_overrides(plan, loss, seed))
    ]
    if plan.pack < 2 or len(pending) < 2:
        return set()
    jobs = {(loss, seed): final_job(plan, loss, seed, params[loss], monitor) for loss, seed in pending}
    begins = starts(jobs)
    by_epoch: dict[int, list[tuple[str, int]]] = {}
    for key in pending:  # runs packed together start from the same epoch
        start = begins[key]
        if start is None or isinstance(start, dict):  # "ordinary": it continues on its own
            by_epoch.setdefault(-1 if start is None else int(start["epoch"]), []).append(key)
    done: set[tuple[str, int]] = set()
    for epoch, keys in sorted(by_epoch.items()):
        for first in range(0, len(keys), plan.pack):
            chunk = keys[first : first + plan.pack]
            if len(chunk) < 2:
                break
            trained = train_chunk(plan, chunk, jobs, None if epoch < 0 else [begins[k] for k in chunk])
            if trained is None:
                return done
            done |= trained
    return done


def train_chunk(
    plan: Plan,
    chunk: list[tuple[str, int]],
    jobs: dict[tuple[str, int], tuple[DictConfig, list[str]]],
    states: list[dict[str, Any]] | None,
) -> set[tuple[str, int]] | None:
    """Train the final runs ``chunk`` as one packed model (continuing from ``states``, their checkpoints,
    unless None); the runs that finished, or None when they cannot be packed."""
    names = [f"final {loss} seed {seed}" for loss, seed in chunk]
    outcomes = train_packed_runs([jobs[key] for key in chunk], "final runs", states, names)
    if outcomes is None:
        return None
    done = set()
    for (loss, seed), (summary, _) in zip(chunk, outcomes, strict=True):
        if summary is not None:
            log.info(
                "final %s: seed %d (%d of %d, packed): %s",
                loss,
                seed,
                seed + 1,
                plan.seeds,
                job_line(summary),
            )
            done.add((loss, seed))
    diverged = [error for summary, error in outcomes if summary is None]
    if diverged:  # as a final run trained alone raises, recorded failed: it would diverge again
        raise NonFiniteLossError(diverged[0] or "a final run's loss became NaN or Inf")
    return done


def final_runs(
    plan: Plan, params: dict[str, dict[str, Any]], seeds: Sequence[int], monitor: tuple[str, str]
) -> None:
    """The final runs of every loss of ``params`` and seed of ``seeds``: packed where they can be
    (:func:`packed_final_runs`), the others one by one (each kept when already finished)."""
    packed = packed_final_runs(plan, params, seeds, monitor)
    for loss in params:
        for seed in seeds:
            if (loss, seed) not in packed:
                final_run(plan, loss, seed, params[loss], monitor)
