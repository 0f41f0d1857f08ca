"""The OpenMP wait policy chosen before torch loads: PASSIVE only when other processes use the cores."""

from __future__ import annotations

import subprocess
import sys
import time

from lossbench import threads


def test_a_busy_process_is_seen_within_the_sampling_interval():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        busy = threads.others_busy_cores(interval=0.3)
    finally:
        spin.kill()
        spin.wait()
    assert busy is not None and busy >= threads.BUSY_CORES, busy
