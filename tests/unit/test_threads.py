"""The OpenMP wait policy chosen before torch loads: PASSIVE only when other processes use the cores."""

from __future__ import annotations

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
