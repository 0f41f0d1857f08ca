"""W&B without a server or credentials: offline, never a prompt."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lossbench.wandb_mode import resolve_wandb_mode, wandb_reachable


def test_wandb_without_a_reachable_server_goes_offline_fast(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lossbench.wandb_mode"):
        assert resolve_wandb_mode("auto", tmp_path) == "offline"
    assert f"upload later with `wandb sync {tmp_path}/wandb/offline-run-*`" in caplog.text
    assert resolve_wandb_mode("online") == "offline"
    assert time.monotonic() - start < 10


def test_wandb_mode_without_credentials(monkeypatch):
    assert resolve_wandb_mode("auto") == "offline"
    assert resolve_wandb_mode("online") == "offline"
    assert resolve_wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("online") == "offline", "WANDB_MODE in the environment wins"


@contextmanager
def silent_server() -> Iterator[int]:
    """A port on which connections are accepted and nothing is ever sent back."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield server.getsockname()[1]
        finally:
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()


class Unauthorized(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server() -> Iterator[int]:
    """A port on which an HTTP server answers every request with 401."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_server_that_accepts_tcp_but_never_answers_is_unreachable(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with silent_server() as port:
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        start = time.monotonic()
        assert not wandb_reachable(timeout=0.5)
        assert time.monotonic() - start < 5
        start = time.monotonic()
        assert resolve_wandb_mode("auto") == "offline"
        assert time.monotonic() - start < 10  # the probe's 3 s, not wandb.init's minutes


def test_a_server_that_answers_with_an_error_status_is_reachable(monkeypatch):
    with http_server() as port:
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        start = time.monotonic()
        assert wandb_reachable()
        assert time.monotonic() - start < 2
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
        assert resolve_wandb_mode("auto") == "online"


def write_settings(folder: Path, mode: str) -> Path:
    """A settings file as ``wandb <mode>`` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings").write_text(f"[default]\nmode = {mode}\n\n")
    return folder / "settings"


def test_auto_follows_wandb_offline_and_wandb_disabled(monkeypatch, tmp_path, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with http_server() as port:  # credentials and a server: auto would be online
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        assert resolve_wandb_mode("auto") == "online"
        global_file = write_settings(Path(os.environ["WANDB_CONFIG_DIR"]), "offline")
        with caplog.at_level(logging.INFO, logger="lossbench.wandb_mode"):
            assert resolve_wandb_mode("auto") == "offline"
        assert f"W&B mode offline, as set in {global_file}" in caplog.text
        local_file = write_settings(tmp_path / "wandb", "disabled")  # the working directory's file first
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="lossbench.wandb_mode"):
            assert resolve_wandb_mode("auto") == "disabled"
        assert f"W&B mode disabled, as set in {local_file}" in caplog.text
        write_settings(tmp_path / "wandb", "online")  # the local file's mode wins over the global one
        assert resolve_wandb_mode("auto") == "online"
        write_settings(tmp_path / "wandb", "disabled")
        assert resolve_wandb_mode("online") == "online", "an explicit mode in the config wins"
        monkeypatch.setenv("WANDB_MODE", "online")
        assert resolve_wandb_mode("auto") == "online", "WANDB_MODE in the environment wins"


def test_an_unreadable_settings_file_sets_no_mode(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "settings").write_text("mode = disabled\n")  # no [default] section
    write_settings(Path(os.environ["WANDB_CONFIG_DIR"]), "disabled")
    assert resolve_wandb_mode("auto") == "disabled", "the global file is read past the broken local one"
    (Path(os.environ["WANDB_CONFIG_DIR"]) / "settings").unlink()
    assert resolve_wandb_mode("auto") == "offline"
