"""Log the comparison table (and plots) as a ``wandb.Table`` to a summary run in the sweep's W&B group."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from lossbench.record import REPORT_JOB_TYPE
from lossbench.report.stats import Row
from lossbench.wandb_mode import resolve_wandb_mode


def log_report(
    rows: list[Row],
    plots: dict[str, list[Path]],
    *,
    project: str,
    group: str,
    entity: str | None = None,
    save_dir: Path | None = None,
    mode: str = "auto",
) -> Any:
    """Create run ``report-<group>`` (job_type ``report``) in ``group`` and log the table; return the run id.

    The mode is resolved like training runs' (offline without credentials, never a prompt).
    """
    import wandb

    columns = [f.name for f in fields(Row)]
    table = wandb.Table(columns=columns, data=[[getattr(r, c) for c in columns] for r in rows])
    run = wandb.init(
        project=project,
        entity=entity,
        group=group,
        job_type=REPORT_JOB_TYPE,
        name=f"report-{group}"[:120],
        dir=str(save_dir) if save_dir else None,
        mode=resolve_wandb_mode(mode, save_dir),
        reinit="finish_previous",
    )
    try:
        payload: dict[str, Any] = {"comparison": table}
        for pngs in plots.values():
            for png in pngs:
                payload[f"plots/{png.stem}"] = wandb.Image(str(png))
        run.log(payload)
        return run.id
    finally:
        run.finish()
