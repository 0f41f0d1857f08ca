"""W&B without a server or credentials: offline, never a prompt."""

from __future__ import annotations

import time

from lossbench.wandb_mode import resolve_wandb_mode


def test_wandb_without_a_reachable_server_goes_offline_fast(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.monotonic()
    assert resolve_wandb_mode("auto") == "offline"
    assert resolve_wandb_mode("online") == "offline"
    assert time.monotonic() - start < 10


def test_wandb_mode_without_credentials(monkeypatch):
    assert resolve_wandb_mode("auto") == "offline"
    assert resolve_wandb_mode("online") == "offline"
    assert resolve_wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("online") == "offline", "WANDB_MODE in the environment wins"
