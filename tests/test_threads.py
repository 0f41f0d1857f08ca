"""The OpenMP wait policy chosen before torch loads: PASSIVE only when other processes use the cores."""

from __future__ import annotations

import subprocess
import sys
import time

from lossbench import threads


def test_a_policy_in_the_environment_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(threads, "others_busy_cores", lambda: 2.0)
    assert threads.choose_wait_policy() == "ACTIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "")  # empty: OpenMP's own default, also kept
    assert threads.choose_wait_policy() is None
    assert threads.os.environ["OMP_WAIT_POLICY"] == ""


def test_passive_when_other_processes_keep_the_cores_busy(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(threads, "others_busy_cores", lambda: 0.1)
    assert threads.choose_wait_policy() is None and "OMP_WAIT_POLICY" not in threads.os.environ
    monkeypatch.setattr(threads, "others_busy_cores", lambda: 1.0)
    assert threads.choose_wait_policy() == "PASSIVE"
    assert threads.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_busy_process_is_seen_within_the_sampling_interval():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        busy = threads.others_busy_cores(interval=0.3)
    finally:
        spin.kill()
        spin.wait()
    assert busy is not None and busy >= threads.BUSY_CORES, busy
