"""The final runs of a tuned loss trained packed: its replicates (one per seed) share everything but the
seed, so when they can be packed (:func:`lossbench.packed.packing_problems`: an MLP, one device, ...) they
train as one packed model (:mod:`lossbench.packed`), each replica exactly as its own final run, and each
writes the run dir its final run writes. Otherwise, or for a single pending seed, each runs on its own."""

from __future__ import annotations

import logging
import time
from typing import Any

from lossbench.record import read_record
from lossbench.tune.jobs import job_line, quiet
from lossbench.tune.study import Plan, final_job

log = logging.getLogger("lossbench")


def packed_final_runs(plan: Plan, loss: str, params: dict[str, Any], monitor: tuple[str, str]) -> set[int]:
    """Train the unfinished final runs of ``loss`` as one packed model when they can be; the seeds whose run
    is now finished (empty when they could not be packed: they run one by one)."""
    pending = [s for s in range(plan.seeds) if not read_record(plan.out / "final" / loss / str(s)).ok]
    if len(pending) < 2:
        return set()
    from lossbench.packed import build_packed, packing_problems, train_packed
    from lossbench.packed.checkpoints import PackedCheckpoints
    from lossbench.packed.fit import free_core_threads
    from lossbench.packed.run_files import write_replica_files

    jobs = [final_job(plan, loss, seed, params, monitor) for seed in pending]
    cfgs = [cfg for cfg, _ in jobs]
    problems = packing_problems(cfgs)
    if problems:
        log.info("final %s: its %d runs train one by one (%s)", loss, len(pending), problems[0])
        return set()
    start = time.perf_counter()
    with quiet(), free_core_threads():
        module, data = build_packed(cfgs)
        checkpoints = PackedCheckpoints([r.cfg for r in module.replicas], [given for _, given in jobs])
        results = train_packed(module, data, cfgs[0], checkpoints)
    wall_s = time.perf_counter() - start
    done = set()
    for k, (seed, (cfg, given)) in enumerate(zip(pending, jobs, strict=True)):
        summary = write_replica_files(cfg, module, data, k, results[k], wall_s, given)
        if summary is not None:
            log.info("final %s: seed %d of %d (packed): %s", loss, seed, plan.seeds, job_line(summary))
            done.add(seed)
    return done
