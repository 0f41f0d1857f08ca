"""OpenMP's wait policy for torch's CPU threads, chosen before torch loads.

OpenMP's threads spin between parallel regions by default. On an idle machine that is the fastest choice
for small models (a digits MLP step: 1.6 ms spinning, 3.3 ms with ``OMP_WAIT_POLICY=PASSIVE``); when other
processes use the cores, the spinning threads fight them for the CPU and a run can take several times as
long (see ``benchmarks/BASELINE.md``). :func:`choose_wait_policy` looks at the machine for 0.1 s before
torch loads: when other processes keep at least half a core busy it sets ``OMP_WAIT_POLICY=PASSIVE``.
A policy already in the environment is kept (``OMP_WAIT_POLICY=`` empty: OpenMP's own default).
"""

from __future__ import annotations

import os
import time

#: other processes' CPU use, in cores, from which the threads wait passively
BUSY_CORES = 0.5


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; None where there is no such file."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def others_busy_cores(interval: float = 0.1) -> float | None:
    """Cores kept busy by other processes during ``interval`` seconds (this process sleeps meanwhile)."""
    before = cpu_times()
    if before is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return load
    time.sleep(interval)
    after = cpu_times()
    if after is None or after[1] == before[1]:
        return None
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total * (os.cpu_count() or 1)


def choose_wait_policy() -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when the machine is busy (unless it is set); return the policy."""
    if "OMP_WAIT_POLICY" in os.environ:
        return os.environ["OMP_WAIT_POLICY"] or None
    busy = others_busy_cores()
    if busy is not None and busy >= BUSY_CORES:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None
