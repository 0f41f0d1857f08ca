"""A packed replica's metrics per epoch (its ``history``, kept in each of its checkpoints under
:data:`HISTORY_KEY`) as the rows its run's loggers write: ``csv/metrics.csv`` and its W&B run get them once
the replica is trained, and a replica continued the ordinary way (``resume=true`` with the sequential
launcher, or alone in a packed sweep) first gets the rows of the epochs its checkpoint holds."""

from __future__ import annotations

from typing import Any

from lossbench.csv_logger import CSVMetricsWriter
from lossbench.run_dir import RunDir

#: the checkpoint entry holding a packed replica's per-epoch metrics (what its run dir's curves need)
HISTORY_KEY = "lossbench_packed_history"


def logged_rows(result: dict[str, Any], steps: int) -> list[tuple[int, dict[str, Any]]]:
    """The rows a replica's ``result`` (:func:`~lossbench.packed.results.replica_results`) logs, as its
    run's loggers get them, each with its step: per epoch a ``train/loss`` row and a row of the ``val/``
    metrics (at the epoch's last step), then the ``test/`` row (``epoch``: the epochs trained, at the
    steps trained). ``steps``: steps per epoch, for an epoch whose history does not hold its step (a
    checkpoint of an older version)."""
    rows = []
    for row in result["history"]:
        epoch = int(row["epoch"])
        step = int(row.get("step", (epoch + 1) * steps - 1))
        if "train/loss" in row:
            rows.append((step, {"epoch": epoch, "train/loss": row["train/loss"]}))
        val = {name: value for name, value in row.items() if name.startswith("val/")}
        if val:
            rows.append((step, {"epoch": epoch, **val}))
    if result["test"]:
        rows.append(
            (
                int(result.get("steps", result["epochs"] * steps)),
                {"epoch": result["epochs"], **result["test"]},
            )
        )
    return rows


def write_csv(
    run_dir: RunDir, rows: list[tuple[int, dict[str, Any]]], hparams: dict[str, Any] | None = None
) -> None:
    """``csv/metrics.csv`` with the ``rows`` (:func:`logged_rows`) its run's CSV logger writes, and with
    ``hparams`` its ``hparams.yaml``; the history holds every epoch, so a file already there (an
    interrupted replica's) is written anew."""
    run_dir.csv.unlink(missing_ok=True)
    writer = CSVMetricsWriter(str(run_dir.csv.parent))
    if hparams is not None:
        writer.log_hparams(hparams)
    for step, metrics in rows:
        writer.log_metrics(metrics, step)
    writer.save()


def restore_csv(run_dir: RunDir, checkpoint: dict[str, Any]) -> bool:
    """Write ``csv/metrics.csv`` of a packed replica continued the ordinary way from ``checkpoint`` (its
    ``last.ckpt``: a packed replica writes its CSV only once trained): the rows of the epochs it holds, to
    which the continued run appends. Whether it was a packed replica's checkpoint."""
    history = checkpoint.get(HISTORY_KEY)
    if history is None:
        return False
    steps = (int(checkpoint["global_step"]) // max(int(checkpoint["epoch"]) + 1, 1)) or 1
    write_csv(run_dir, logged_rows({"history": history, "test": {}}, steps))
    return True
