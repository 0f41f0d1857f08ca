"""The worker processes of ``lossbench tune --workers`` and ``lossbench advise --workers``: a SIGKILLed
command leaves none of its processes behind (workers, queues' helpers, the resource tracker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: a command's worker pool, started as ``tune`` and ``advise`` start theirs, until it is killed
POOLS = {
    "tune": "from lossbench.tune.runner import worker_pool as pool",
    "advise": "from lossbench.advise.rounds import executor as pool",
}


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command's name (state, parent, ...); None once it
    ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    procs = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    return [p for p in procs if (fields := stat_fields(p)) is not None and int(fields[1]) == pid]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (not ended, not a zombie)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
@pytest.mark.parametrize("command", sorted(POOLS))
def test_a_sigkilled_command_leaves_no_process_of_its_workers(command):
    code = (
        f"import os, time\n{POOLS[command]}\nwith pool(2) as workers:\n"
        "    [f.result() for f in [workers.submit(os.getpid) for _ in range(4)]]\n"
        "    print('ready', flush=True)\n    time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        started = children(proc.pid)
        assert len(started) >= 2, "two workers at least"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 20
    while any(alive(pid) for pid in started) and time.time() < deadline:
        time.sleep(0.2)
    left = [pid for pid in started if alive(pid)]
    for pid in left:  # not to leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, "processes of the killed command still run"
