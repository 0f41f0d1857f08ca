"""tests.preloaded starts a script as subprocess starts it: the same arguments, directory, environment,
streams, exit statuses and signals."""

from __future__ import annotations

import functools
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import preloaded

SCRIPT = """
import atexit, os, sys, tempfile, time
import numpy
atexit.register(lambda: print("atexit ran", flush=True))
print(sys.argv, os.getcwd(), os.environ.get("PROBE"), sys.path[:2], tempfile.gettempdir(), sep="|")
print("numpy", numpy.random.randint(1 << 30))
print("to stderr", file=sys.stderr)
action = sys.argv[1]
if action == "raise":
    raise ValueError("uncaught")
if action == "wait":
    print("waiting", flush=True)
    time.sleep(60)
if action == "killed":
    os.kill(os.getpid(), 9)
sys.exit(int(action))
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(SCRIPT)
    (tmp_path / "work").mkdir()
    (tmp_path / "tmp").mkdir()
    return path


def both(script: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, ...]:
    """``python probe.py ARGS`` from the preloaded server and afresh, with ``env`` added to the
    environment (a relative ``PYTHONPATH`` and another ``TMPDIR`` included)."""
    cmd = [sys.executable, str(script), *args]
    env = {**os.environ, "PROBE": "given", "PYTHONPATH": "..", "TMPDIR": str(script.parent / "tmp"), **env}
    kwargs = {"cwd": script.parent / "work", "env": env, "capture_output": True, "text": True, "timeout": 60}
    return preloaded.run(cmd, **kwargs), subprocess.run(cmd, **kwargs)


def test_arguments_directory_environment_streams_and_exit_statuses_are_a_fresh_interpreters(script):
    for action, status in (("0", 0), ("3", 3), ("raise", 1)):
        forked, fresh = both(script, action)
        assert forked.returncode == fresh.returncode == status
        assert forked.stdout.splitlines()[0] == fresh.stdout.splitlines()[0]  # argv, cwd, env, path, tmp
        assert forked.stdout.splitlines()[-1] == fresh.stdout.splitlines()[-1] == "atexit ran"
        assert forked.stderr == fresh.stderr  # the traceback starts at the script's frame
        assert ("ValueError: uncaught" in forked.stderr) == (action == "raise")
    cmd = [sys.executable, str(script), "0"]
    draws = {preloaded.run(cmd, capture_output=True, text=True).stdout.splitlines()[1] for _ in range(2)}
    assert len(draws) == 2, "each child seeds NumPy's global generator afresh"


def test_output_is_buffered_as_python_buffers_it(script):
    """Without PYTHONUNBUFFERED, what a killed process printed to a pipe is still in its buffer: lost."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for extra, kept in (({}, False), ({"PYTHONUNBUFFERED": "1"}, True)):
        cmd = [sys.executable, str(script), "killed"]
        runs = [
            start(cmd, env={**env, **extra}, capture_output=True, text=True, timeout=60)
            for start in (preloaded.run, subprocess.run)
        ]
        assert runs[0].returncode == runs[1].returncode == -9
        printed = [r.stdout.splitlines()[:1] for r in runs]  # the first line (the next: NumPy's draw)
        assert printed[0] == printed[1] and bool(printed[0]) == kept


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_a_signal_reaches_the_child_as_it_reaches_a_fresh_interpreter(script, sig):
    statuses = []
    # as a shell starts it: SIGINT at its default, whatever this test process does with it
    fresh = functools.partial(
        subprocess.Popen, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )
    for start in (preloaded.popen, fresh):
        proc = start(
            [sys.executable, str(script), "wait"],
            cwd=script.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        while proc.stdout.readline().strip() != "waiting":
            time.sleep(0.01)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
        statuses.append((proc.returncode, "KeyboardInterrupt" in out))
    assert isinstance(statuses[0][0], int) and statuses[0] == statuses[1]


def test_a_variable_read_while_torch_loads_gets_a_fresh_interpreter(script, monkeypatch):
    """Only that: a variable the test process's own imports change after the server started (importing
    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, ``lossbench.run`` then ``0`` without a GPU; torch
    reads it at each call) still lets the server start its commands."""
    preloaded.SERVER.ready()
    flipped = "0" if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" else "1"
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", flipped)
    cmd = [sys.executable, str(script), "0"]
    assert isinstance(
        preloaded.popen(cmd, env={**os.environ}, stdout=subprocess.DEVNULL), preloaded.PreloadedProcess
    )
    other = os.environ.get("OMP_NUM_THREADS", "") + "1"  # not the server's
    fresh = preloaded.popen(cmd, env={**os.environ, "OMP_NUM_THREADS": other}, stdout=subprocess.DEVNULL)
    assert isinstance(fresh, subprocess.Popen)
    assert fresh.wait(60) == 0


def test_a_process_dropped_unwaited_leaves_the_server_serving_and_a_timeout_loses_no_output(script):
    proc = preloaded.popen([sys.executable, str(script), "wait"], stdout=subprocess.PIPE, text=True)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.communicate(timeout=0.5)
    proc.kill()
    out, _ = proc.communicate(timeout=60)
    assert "waiting" in out and proc.returncode == -9
    dropped = preloaded.popen([sys.executable, str(script), "wait"], stdout=subprocess.DEVNULL)
    dropped.kill()
    del dropped
    gc.collect()
    time.sleep(0.3)  # the server has reaped it and found nobody to tell
    assert preloaded.run([sys.executable, str(script), "3"]).returncode == 3
