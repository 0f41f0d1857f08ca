"""``prepare_data`` once per node, before any process sets the data up.

Lightning runs ``prepare_data`` on each node's local rank 0 inside ``fit``; lossbench needs the data's shape
before it builds the model, so the entry point calls it first. With Lightning's own DDP launcher the other
processes start later (inside ``fit``) and find the files there. When every process starts at once
(``torchrun``, ``srun`` with several tasks per node), local rank 0 leaves a marker when it is done and the
other local ranks wait for it, so none reads half-downloaded files.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from lossbench.errors import DataError

#: how long the other local ranks wait for local rank 0's ``prepare_data``
WAIT_S = 3600.0


def local_rank() -> int:
    """This process's rank on its node (0 outside DDP), from the variables the launchers set."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))


def _marker() -> Path | None:
    """A file shared by the processes of one job started together, or ``None`` outside such a job."""
    job = os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    step = os.environ.get("SLURM_STEP_ID", "")
    return Path(tempfile.gettempdir()) / f"lossbench-prepared-{job}-{step}-{os.getuid()}"


def prepare_once(dm: Any, wait_s: float = WAIT_S) -> None:
    marker = _marker()
    if local_rank() == 0:
        dm.prepare_data()
        if marker is not None:
            marker.touch()
        return
    if marker is None:
        return
    deadline = time.monotonic() + wait_s
    while not marker.exists():
        if time.monotonic() > deadline:
            raise DataError(
                f"local rank {local_rank()} waited {wait_s:.0f} s for local rank 0's prepare_data (marker "
                f"{marker}): check that process's log, or prepare the data before starting the job"
            )
        time.sleep(1.0)
