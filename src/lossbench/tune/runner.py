"""``lossbench tune``: the studies (one process, or ``--workers`` processes on one machine), the final runs
and the report, in that order; every step skips what a previous, killed command already finished."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from lossbench.errors import damaged_file
from lossbench.overrides import same_overrides
from lossbench.tune import study as st
from lossbench.tune.final import final_run, final_runs
from lossbench.tune.jobs import quiet
from lossbench.tune.out_dir import check_tune_out
from lossbench.tune.plan import data_fingerprint

log = logging.getLogger("lossbench")


def _die_with_parent() -> None:
    """Linux: a worker is killed with its parent (a SIGKILLed ``lossbench tune`` leaves no orphans)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def init_worker(slots: Any, workers: int, gpus: int) -> None:
    """Give a worker its share of the machine: one GPU each when there are enough (``gpus``, counted by
    the parent), else ``cpu_count // workers`` CPU threads."""
    _die_with_parent()
    if not logging.getLogger().handlers:  # a spawned worker: its one line per run, as the parent prints
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    slot = slots.get()
    os.environ["LOSSBENCH_WORKER"] = str(slot)
    if gpus >= workers:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot)  # before this process initialises CUDA
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _worker_plan(plan: st.Plan) -> st.Plan:
    slot = int(os.environ.get("LOSSBENCH_WORKER", 0))
    return st.Plan(**{**plan.__dict__, "seed": plan.seed + 1000 * slot, "workers": plan.workers})


def tune_all(plan: st.Plan, monitor: tuple[str, str]) -> None:
    """One worker: every loss in turn, starting at its own, until each study's budget is spent."""
    plan = _worker_plan(plan)
    slot = int(os.environ.get("LOSSBENCH_WORKER", 0))
    losses = plan.losses[slot % len(plan.losses) :] + plan.losses[: slot % len(plan.losses)]
    with quiet():
        for loss in losses:
            st.tune_loss(plan, loss, monitor)


def final_task(plan: st.Plan, loss: str, seed: int, params: dict, monitor: tuple[str, str]) -> str:
    with quiet():
        return str(final_run(plan, loss, seed, params, monitor))


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes, each given its slot (:func:`init_worker`) from a plain queue handed
    to it as it starts: no manager process that a SIGKILLed parent would leave behind."""
    ctx = get_context("spawn")
    slots = ctx.Queue()
    for i in range(workers):
        slots.put(i)
    import torch

    gpus = torch.cuda.device_count()
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=init_worker, initargs=(slots, workers, gpus)
    )


def check_plan(plan: st.Plan) -> None:
    """A rerun must ask for the same search: its record is ``DIR/plan.json``."""
    record = plan.out / "plan.json"
    wanted = {
        "losses": plan.losses,
        "trials": plan.trials,
        "overrides": plan.overrides,
        "seed": plan.seed,
        "prune": plan.prune,  # pruned and unpruned trials are not the same budget
        "data": data_fingerprint(plan.overrides),  # the files behind data.path / data.root
    }
    if record.is_file():
        try:
            before = json.loads(record.read_text())
            before.get("losses")
        except (ValueError, AttributeError) as err:
            why = f"{type(err).__name__}: {err}"
            raise damaged_file(
                record,
                why,
                "it records the search asked for; delete it to continue the "
                "search as this command asks (the trials in the study storage are kept)",
            ) from None
        # a plan.json written before a key was recorded (prune, data) does not hold it: nothing to compare
        changed = [
            k for k in wanted if before.get(k, wanted[k] if k in ("prune", "data") else None) != wanted[k]
        ]
        if "data" in changed and before.get("data") is not None:
            raise st.ConfigError(
                f"{plan.out} holds a search on other data (the files data.path or data.root "
                "name have changed since): rerun it on the data it ran on, or use another --out"
            )
        changed = [k for k in changed if k != "data"]  # a plan.json written before it held the data's
        if "overrides" in changed and same_overrides(before.get("overrides") or [], plan.overrides):
            changed.remove("overrides")  # the same overrides in another order
        if changed:
            raise st.ConfigError(
                f"{plan.out} holds a search with other {', '.join(changed)} "
                f"({', '.join(f'{k}={before.get(k)}' for k in changed)}): rerun it as it was, or use "
                "another --out"
            )
    plan.out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({**wanted, "seeds": plan.seeds, "storage": plan.storage_url}, indent=2))


def tune(plan: st.Plan) -> Path:
    """Run (or continue) the whole protocol, one console line per run; returns the report directory."""
    with quiet():
        return protocol(plan)


def protocol(plan: st.Plan) -> Path:
    check_tune_out(plan.out)  # another command's search is none of this one's, whatever it holds
    monitor = st.resolve_monitor(plan)  # what it refuses leaves no plan.json to block the corrected rerun
    check_plan(plan)
    log.info(
        "tune: %s on %s (%s), %d trials each", ",".join(plan.losses), monitor[0], monitor[1], plan.trials
    )
    for loss in plan.losses:
        retried = st.recover_stale(plan, loss, st.open_study(plan, loss, monitor[1]))
        if retried:
            log.info("tune %s: %d trial(s) of a killed run queued again", loss, retried)
    if plan.workers == 1:
        tune_all(plan, monitor)
    else:
        with worker_pool(plan.workers) as pool:
            for future in [pool.submit(tune_all, plan, monitor) for _ in range(plan.workers)]:
                future.result()
    params = {loss: st.best_params(plan, loss, monitor[1]) for loss in plan.losses}
    if plan.workers == 1:  # packed where they can be, the rest one by one
        final_runs(plan, params, range(plan.seeds), monitor)
    else:
        tasks = [(loss, seed) for loss in plan.losses for seed in range(plan.seeds)]
        log.info("final runs: %d workers train them one run each at a time (not packed)", plan.workers)
        with worker_pool(plan.workers) as pool:
            futures = [
                pool.submit(final_task, plan, loss, seed, params[loss], monitor) for loss, seed in tasks
            ]
            for future in futures:
                future.result()
    from lossbench.tune.report import write_tuning_report

    return write_tuning_report(plan, monitor)
