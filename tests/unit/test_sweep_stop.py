"""A sweep whose jobs run in other processes, stopped as a whole (``lossbench.sweep_stop``); end to end in
``tests/integration/test_sweeps.py``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from lossbench.sweep_stop import STOP_MARK, ignores_sigterm, runs_jobs_elsewhere, stop_signal, stop_workers


def test_the_launchers_whose_jobs_run_elsewhere():
    assert runs_jobs_elsewhere("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher")
    assert runs_jobs_elsewhere("hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher")
    assert not runs_jobs_elsewhere("hydra._internal.core_plugins.basic_launcher.BasicLauncher")
    assert not runs_jobs_elsewhere("hydra_plugins.lossbench_packed_launcher.packed_launcher.PackedLauncher")


def test_the_stop_mark_names_its_signal(tmp_path):
    assert stop_signal(tmp_path) is None
    (tmp_path / STOP_MARK).write_text("SIGINT")
    assert stop_signal(tmp_path) == "SIGINT"


def test_workers_get_sigterm_once_and_one_that_ignores_it_is_not_waited_for():
    ignoring = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True)"
    ignoring += "; time.sleep(60)"
    stopping = "import time; print(1, flush=True); time.sleep(60)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        for code in (ignoring, stopping)
    ]
    try:
        for proc in procs:
            proc.stdout.readline()  # its handlers are in place
        assert ignores_sigterm(procs[0].pid) and not ignores_sigterm(procs[1].pid)
        start = time.monotonic()
        stop_workers(grace_s=0.0, timeout_s=30.0)
        assert time.monotonic() - start < 10, "the one ignoring SIGTERM was waited for"
        assert procs[1].wait(timeout=5) == -signal.SIGTERM and procs[0].poll() is None
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
