"""A sweep whose jobs run in other processes, stopped as a whole (``lossbench.sweep_stop``); end to end in
``tests/integration/test_sweeps.py``."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import yaml

from lossbench import sweep_stop
from lossbench.run_dir_claim import run_dir_held
from lossbench.sweep_stop import STOP_MARK, runs_jobs_elsewhere, stop_signal, wait_for_jobs
from tests.finalizers import FailingFinalizer, SignalledInFinalizer

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def test_the_launchers_whose_jobs_run_elsewhere():
    assert runs_jobs_elsewhere({"_target_": JOBLIB, "n_jobs": 2})
    assert not runs_jobs_elsewhere({"_target_": JOBLIB, "n_jobs": 1}), "joblib runs one job at a time here"
    assert runs_jobs_elsewhere(
        {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
    )
    assert not runs_jobs_elsewhere({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"})
    assert not runs_jobs_elsewhere(None)


def test_the_stop_mark_names_its_signal(tmp_path):
    assert stop_signal(tmp_path) is None
    (tmp_path / STOP_MARK).write_text("SIGINT")
    assert stop_signal(tmp_path) == "SIGINT"


@contextlib.contextmanager
def holding(job, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process holding ``job``'s run dir (its ``flock``) for ``seconds``, as a training job does."""
    job.mkdir()
    holder = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY)"
    holder += f"; fcntl.flock(fd, fcntl.LOCK_EX); print(1, flush=True); time.sleep({seconds})"
    proc = subprocess.Popen([sys.executable, "-c", holder, str(job)], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # it holds the dir
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_the_sweep_waits_while_a_job_holds_its_run_dir(tmp_path, monkeypatch):
    with holding(tmp_path / "0", 1.5) as proc:
        assert run_dir_held(tmp_path / "0") and not run_dir_held(tmp_path / "none")
        monkeypatch.setattr(sweep_stop, "SETTLE_S", 0.2)
        start = time.monotonic()
        wait_for_jobs(tmp_path, timeout_s=30)
        assert time.monotonic() - start >= 1.0 and proc.poll() is not None
        assert not run_dir_held(tmp_path / "0")


def test_jobs_that_do_not_stop_are_left_after_the_timeout(tmp_path, caplog):
    with holding(tmp_path / "0", 30) as proc, caplog.at_level("ERROR", logger="lossbench"):
        wait_for_jobs(tmp_path, timeout_s=0.3)
        assert "did not stop within" in caplog.text and proc.poll() is None


def test_a_job_in_a_worker_names_the_sweeps_command_to_continue(tmp_path, monkeypatch):
    """A submitit job's own command line is ``_submit.py <folder>``: the sweep's comes from its
    ``multirun.yaml``."""
    from lossbench.signals import continue_command

    hydra = ["hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path}", "hydra.mode=MULTIRUN"]
    saved = {"hydra": {"overrides": {"hydra": hydra, "task": ["loss=ce,focal", "resume=true"]}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    monkeypatch.setattr(sys, "argv", ["_submit.py", str(tmp_path / ".submitit" / "%j")])
    again = f"resume=true hydra.sweep.dir={tmp_path}"
    assert (
        continue_command(tmp_path)
        == f"python train.py -m hydra/launcher=submitit_local loss=ce,focal {again}"
    )
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "loss=ce,focal"])  # the sweep's own process
    assert (
        continue_command(tmp_path)
        == f"python train.py -m loss=ce,focal resume=true hydra.sweep.dir={tmp_path}"
    )


def test_a_stop_whose_exit_python_swallowed_ends_the_sweep_when_its_launcher_returns(tmp_path, monkeypatch):
    """The sweep's handler runs inside a finalizer: Python drops its ``SystemExit`` (not printed as an
    ignored error), and :func:`sweep_ended` raises it when the launcher returns; other errors a finalizer
    raises are reported as before."""

    (tmp_path / "0" / ".hydra").mkdir(parents=True)  # a job that has not finished: a stop to continue
    monkeypatch.setattr(sweep_stop, "wait_for_jobs", lambda sweep_dir, timeout_s: None)
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: reported.append(info.exc_value))
    before = sys.unraisablehook, signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        sweep_stop.stop_workers_on_signal(tmp_path)
        SignalledInFinalizer()  # the handler stops the sweep inside __del__; Python drops its exit
        FailingFinalizer()
        assert (tmp_path / STOP_MARK).read_text() == "SIGTERM"
        with pytest.raises(SystemExit) as stop:
            sweep_stop.sweep_ended()
        assert stop.value.code == 143
        assert [type(e) for e in reported] == [ValueError] and sys.unraisablehook is before[0]
        sweep_stop.sweep_ended()  # raised once
    finally:
        signal.signal(signal.SIGINT, before[1])
        signal.signal(signal.SIGTERM, before[2])
