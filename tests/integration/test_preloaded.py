"""tests.preloaded starts a script as subprocess starts it: the same arguments, directory, environment,
streams, exit statuses and signals."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import preloaded

SCRIPT = """
import atexit, os, sys, time
import numpy
atexit.register(lambda: print("atexit ran", flush=True))
print(sys.argv, os.getcwd(), os.environ.get("PROBE"), sys.path[0], sep="|")
print("numpy", numpy.random.randint(1 << 30))
print("to stderr", file=sys.stderr)
action = sys.argv[1]
if action == "raise":
    raise ValueError("uncaught")
if action == "wait":
    print("waiting", flush=True)
    time.sleep(60)
sys.exit(int(action))
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(SCRIPT)
    (tmp_path / "work").mkdir()
    return path


def both(script: Path, *args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    cmd = [sys.executable, str(script), *args]
    env = {**os.environ, "PROBE": "given"}
    kwargs = {"cwd": script.parent / "work", "env": env, "capture_output": True, "text": True, "timeout": 60}
    return preloaded.run(cmd, **kwargs), subprocess.run(cmd, **kwargs)


def test_arguments_directory_environment_streams_and_exit_statuses_are_a_fresh_interpreters(script):
    for action, status in (("0", 0), ("3", 3), ("raise", 1)):
        forked, fresh = both(script, action)
        assert forked.returncode == fresh.returncode == status
        assert forked.stdout.splitlines()[0] == fresh.stdout.splitlines()[0]  # argv, cwd, env, sys.path[0]
        assert forked.stdout.splitlines()[-1] == fresh.stdout.splitlines()[-1] == "atexit ran"
        assert forked.stderr.splitlines()[0] == "to stderr"
        assert ("ValueError: uncaught" in forked.stderr) == (action == "raise")
    cmd = [sys.executable, str(script), "0"]
    draws = {preloaded.run(cmd, capture_output=True, text=True).stdout.splitlines()[1] for _ in range(2)}
    assert len(draws) == 2, "each child seeds NumPy's global generator afresh"


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


def test_a_variable_read_while_torch_loads_gets_a_fresh_interpreter(script):
    cmd = [sys.executable, str(script), "0"]
    assert isinstance(
        preloaded.popen(cmd, env={**os.environ}, stdout=subprocess.DEVNULL), preloaded.PreloadedProcess
    )
    other = os.environ.get("OMP_NUM_THREADS", "") + "1"  # not the server's
    fresh = preloaded.popen(cmd, env={**os.environ, "OMP_NUM_THREADS": other}, stdout=subprocess.DEVNULL)
    assert isinstance(fresh, subprocess.Popen)
    assert fresh.wait(60) == 0
