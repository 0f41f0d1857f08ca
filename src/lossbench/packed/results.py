"""Each replica's outcome after its packed group trained: the fields of its run's record."""

from __future__ import annotations

from typing import Any

from lossbench.packed.module import PackedModule


def replica_results(module: PackedModule) -> list[dict[str, Any]]:
    """Each replica's outcome, in the fields of its run's record: ``status``, ``monitor`` (metric, mode,
    best value, best epoch), the last ``val`` metrics, the ``test`` metrics of its best epoch, the
    ``epochs`` and optimizer ``steps`` trained, its ``history`` per epoch (``step``: the step its run logs
    the epoch's metrics at) and, when it failed, its ``error``."""
    out = []
    for k, replica in enumerate(module.replicas):
        best = module.best[k]
        result: dict[str, Any] = {
            "status": module.status[k],
            "seed": replica.seed,
            "loss": type(replica.loss).__name__,
            "monitor": {  # without a best checkpoint its run reports the last value, as here
                "metric": replica.monitor,
                "mode": replica.mode,
                "best": best.best if replica.select_best else module.last_val[k].get(replica.monitor),
                "best_epoch": best.epoch if replica.select_best else None,
            },
            "val": dict(module.last_val[k]),
            "test": dict(module.test_values[k]),
            "epochs": module.epochs_trained[k],
            "steps": module.global_step,
            "history": [dict(row) for row in module.history[k]],
        }
        if module.errors[k] is not None:
            result["error"] = module.errors[k]
        out.append(result)
    return out
