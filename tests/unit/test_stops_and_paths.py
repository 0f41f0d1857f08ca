"""Stops outside training, names that build paths, unwritable output dirs and damaged search storage: each
is one line with the fix, before any work, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lossbench.cli import main as cli_main
from lossbench.errors import ConfigError, DataError, RunInterrupted
from lossbench.output_root import check_plain_name, check_writable
from lossbench.signals import as_interrupted, raise_if_stopped, sigterm_raises, stopped_outside_training
from lossbench.tune.stored import check_storage
from lossbench.tune.study import Plan
from tests.conftest import run_cli
from tests.finalizers import FailingFinalizer, SignalledInFinalizer


@pytest.mark.parametrize("name", ["../../elsewhere", "a/b", "..", ".", "", "x\\y"])
def test_a_name_that_would_leave_the_output_root_is_refused(name):
    with pytest.raises(ConfigError, match="task_name=.*not a plain folder name"):
        check_plain_name(name, "task_name")


def test_a_plain_name_is_kept():
    assert check_plain_name("my_experiment-2", "task_name") == "my_experiment-2"


def test_a_file_where_a_folder_is_needed_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="a file stands where a folder is needed") as err:
        check_writable(tmp_path / "afile" / "runs", "--out")
    assert "\n" not in str(err.value) and str(tmp_path / "afile") in str(err.value)


def test_a_full_disk_is_named_and_nothing_is_created(tmp_path, monkeypatch):
    import errno
    import tempfile

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    with pytest.raises(ConfigError, match="the disk is full"):
        check_writable(tmp_path / "new" / "dir", "the run dir")
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_a_task_name_outside_outputs_in_one_line(tmp_path):
    done = run_cli("task_name=../../escaped", cwd=tmp_path, check=False, timeout=600, fresh=True)
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "task_name='../../escaped'" in lines[0]
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent.parent / "escaped").exists()


@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_train_names_an_output_dir_it_cannot_write_before_any_work(tmp_path, mode):
    (tmp_path / "outputs").write_text("a file where the output root should be")
    (tmp_path / "multirun").write_text("a file where the sweep root should be")
    args = ["-m", "seed=0,1"] if mode == "multirun" else []
    done = run_cli(*args, cwd=tmp_path, check=False, timeout=600, fresh=True)
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "a file stands where a folder is needed" in lines[0]
    assert (tmp_path / "outputs").read_text() == "a file where the output root should be"


def test_sigterm_raises_outside_lightning_and_is_quiet_inside():
    with sigterm_raises():
        with pytest.raises(RunInterrupted) as err:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.01)  # the handler runs at the next bytecode
        assert err.value.exit_status == 143
        ours = signal.getsignal(signal.SIGTERM)
        calls = []
        # what Lightning does during fit: its own handler, which calls the one that was in place
        signal.signal(signal.SIGTERM, lambda signum, frame: (calls.append(signum), ours(signum, frame)))
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.01)
        assert calls == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is not ours  # the previous handler is back


def test_a_sigterm_whose_exception_python_swallowed_stops_at_the_next_run(monkeypatch):
    """A handler that runs inside a finalizer: Python drops the exception (without printing it: it is not
    an error) and the command still stops where it goes from one run to the next; any other exception a
    finalizer raises is reported as before."""

    reported: list[BaseException | None] = []
    hook = reported.append  # as Python's default hook, which prints "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", lambda info: hook(info.exc_value))
    before = sys.unraisablehook
    with sigterm_raises():
        raise_if_stopped()  # nothing yet
        SignalledInFinalizer()  # collected at once: the handler raises inside __del__, and Python drops it
        FailingFinalizer()
        with pytest.raises(RunInterrupted) as err:
            raise_if_stopped()
        assert err.value.signal_name == "SIGTERM"
    assert [type(e) for e in reported] == [ValueError] and sys.unraisablehook is before
    raise_if_stopped()  # a command that ended forgets it


def test_a_sigterm_a_library_swallowed_stops_the_run_once_its_w_and_b_run_started_and_before_fit():
    """``wandb.init`` (and other libraries) catch ``Exception`` in places: a SIGTERM that arrives there is
    swallowed, and the run must not train on to its end before it stops."""
    from lossbench.interrupt import stopped_by_signal
    from lossbench.loggers import init_wandb_run

    with sigterm_raises():
        init_wandb_run([])  # nothing stopped: nothing raised
        try:  # as a library's broad except around a call the signal interrupts
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.01)
        except Exception:
            pass
        with pytest.raises(RunInterrupted):
            init_wandb_run([])
        trained = []
        with pytest.raises(RunInterrupted), stopped_by_signal(trainer=None):
            trained.append(1)
        assert trained == [], "the fit did not start"


def test_submitits_time_limit_and_requeue_exits_are_stops_by_sigusr2_not_failures_or_ctrl_c(monkeypatch):
    """A job of hydra/launcher=slurm gets SIGUSR2 before its time limit: submitit's handler raises
    ``UncompletedJobError`` (no requeue left, the preset's ``max_num_timeout: 0``), recorded as a failure;
    on a preemption it requeues the job and exits, which read as Ctrl-C. Both are a stop by SIGUSR2; an
    exit raised elsewhere is not."""
    from types import SimpleNamespace

    from submitit.core.job_environment import SignalHandler
    from submitit.core.utils import UncompletedJobError

    from lossbench.interrupt import stopped_by_signal

    def submitits_exit() -> None:  # submitit's own sys.exit(-1), as after it requeued the job
        handler = SignalHandler(SimpleNamespace(global_rank=0), None, SimpleNamespace(function=print))
        handler.checkpoint_and_exit(signal.SIGUSR2)

    trainer = SimpleNamespace(interrupted=True)  # Lightning's state after any exception in fit
    with pytest.raises(RunInterrupted) as stop, stopped_by_signal(trainer):
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")
    assert stop.value.signal_name == "SIGUSR2" and stop.value.exit_status == 140
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    with pytest.raises(RunInterrupted) as stop, stopped_by_signal(trainer):
        submitits_exit()
    assert stop.value.signal_name == "SIGINT", "outside a submitit job, as before"
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    with pytest.raises(RunInterrupted) as stop, stopped_by_signal(trainer):
        submitits_exit()
    assert stop.value.signal_name == "SIGUSR2" and stop.value.requeued == -1, "the exit submitit needs"

    def submitit_gives_up() -> None:
        raise UncompletedJobError("timed-out too many times")

    for submitits, requeued in ((submitits_exit, -1), (submitit_gives_up, None)):
        with pytest.raises(RunInterrupted) as stop, stopped_by_signal(trainer):
            try:  # inside torch.save, which turns it into a RuntimeError
                submitits()
            except BaseException:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from None
        assert stop.value.signal_name == "SIGUSR2" and stop.value.requeued == requeued
    try:  # a real error raised while handling the job's own sys.exit(2): no stop, no requeue
        try:
            sys.exit(2)
        except SystemExit:
            raise ValueError("bad option") from None
    except ValueError as err:
        assert as_interrupted(err) is None
    with pytest.raises(ValueError), stopped_by_signal(trainer):
        raise ValueError("any other error stays itself")
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")  # which would start a requeued job afresh
    with pytest.raises(RunInterrupted) as stop, stopped_by_signal(trainer):
        submitits_exit()
    assert stop.value.signal_name == "SIGUSR2" and stop.value.requeued is None, "it ends as stopped"
    with pytest.raises(RunInterrupted) as stop, stopped_by_signal(trainer):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemExit(1) from None  # Lightning's Ctrl-C handling, in a submitit job too
    assert stop.value.signal_name == "SIGINT"


def test_a_typo_in_tune_loss_or_a_checkpoint_to_start_from_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="--loss focall: no such loss; choose from .*focal"):
        Plan(losses=["ce", "focall"], trials=2, seeds=1, out=tmp_path)
    with pytest.raises(ConfigError, match="ckpt_path=x.ckpt would start every trial and final run from one"):
        Plan(losses=["ce"], trials=2, seeds=1, out=tmp_path, overrides=["ckpt_path=x.ckpt"])


def test_ctrl_c_is_sigint_and_the_line_says_what_is_kept(tmp_path):
    err = as_interrupted(KeyboardInterrupt())
    assert err.signal_name == "SIGINT" and err.exit_status == 130
    nothing = stopped_outside_training("SIGINT", tmp_path / "last.ckpt", None)
    assert "nothing to keep" in nothing
    in_sweep = stopped_outside_training(
        "SIGTERM", tmp_path / "last.ckpt", tmp_path
    )  # its other jobs are kept
    assert "it starts again" in in_sweep and "resume=true" in in_sweep and "nothing to keep" not in in_sweep
    (tmp_path / "last.ckpt").write_bytes(b"x")
    kept = stopped_outside_training("SIGTERM", tmp_path / "last.ckpt", None)
    assert "is kept" in kept and "resume=true" in kept


def test_a_stop_while_starting_is_one_line_with_the_signal_status(tmp_path):
    code = (
        "import os, signal, time\n"
        "from lossbench.signals import exit_while_starting\n"
        "exit_while_starting('lossbench')\n"
        "exit_while_starting('lossbench', 'job 2 did not start')\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(30)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143
    assert done.stderr.strip() == "lossbench: stopped by SIGTERM while starting: nothing was run"
    code = code.replace("exit_while_starting('lossbench')\n", "").replace("SIGTERM)", "SIGINT)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert done.stderr.strip() == "lossbench: stopped by SIGINT while starting: job 2 did not start"


def _plan(out: Path, storage: str | None = None) -> Plan:
    return Plan(losses=["ce"], trials=1, seeds=1, out=out, storage=storage)


def test_a_truncated_study_db_is_named_in_one_line(tmp_path):
    db = tmp_path / "study.db"
    with sqlite3.connect(db) as con:
        con.execute("create table t (x)")
        con.executemany("insert into t values (?)", [(str(i) * 200,) for i in range(2000)])
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DataError, match="study.db is damaged") as err:
        check_storage(_plan(tmp_path))
    assert "\n" not in str(err.value) and "move it away" in str(err.value)


def test_a_study_db_that_is_not_a_database_stops_tune_in_one_line(tmp_path, capsys):
    (tmp_path / "study.db").write_bytes(os.urandom(4096))
    status = cli_main(["tune", "--loss", "ce", "--trials", "1", "--seeds", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and str(tmp_path / "study.db") in err[0]


def test_a_damaged_journal_line_is_named(tmp_path):
    journal = tmp_path / "search.journal"
    journal.write_text('{"op_code": 0}\nnot json\n{"op_code": 1}\n{"op_code"')  # a cut last line is fine
    with pytest.raises(DataError, match="line 2"):
        check_storage(_plan(tmp_path, storage=str(journal)))
    journal.write_text('{"op_code": 0}\n{"op_code"')
    check_storage(_plan(tmp_path, storage=str(journal)))


def test_advise_stopped_between_runs_names_the_command_that_continues(tmp_path, monkeypatch, capsys):
    import lossbench.advise.command as command

    def stopped(*args, **kwargs):
        raise RunInterrupted("SIGTERM", "")

    monkeypatch.setattr(command, "advise", stopped)
    monkeypatch.chdir(tmp_path)  # the default --out, advise/<date>/<time>, is made in the working directory
    status = cli_main(["advise", "data=digits"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 143 and len(err) == 1
    assert "stopped by SIGTERM" in err[0] and "Continue with:" in err[0] and "--out" in err[0]
    assert list((tmp_path / "advise").glob("*/*/.command.lock")) == []  # the lock goes with the command


def _csv_run(run_dir: Path, epochs_in_csv: int) -> Path:
    from lossbench.record import RunRecord

    record = RunRecord(
        "ok",
        loss="ce",
        seed=0,
        overrides=["loss=ce", "seed=0"],
        monitor={"metric": "val/acc", "mode": "max", "best": 0.9},
        test={"test/acc": 0.9},
        epochs=4,
        config={"logger": {"csv": {"_target_": "lossbench.csv_logger.AppendingCSVLogger"}}, "trainer": {}},
    )
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(__import__("json").dumps(record.to_dict()))
    rows = "".join(f"{e},{e},0.{e}\n" for e in range(epochs_in_csv))
    (run_dir / "csv").mkdir()
    (run_dir / "csv" / "metrics.csv").write_text("epoch,step,val/acc\n" + rows)
    return run_dir


def test_compare_counts_a_run_whose_csv_is_cut_off_as_damaged(tmp_path):
    from lossbench.report.collect import read_run

    whole = read_run(_csv_run(tmp_path / "whole", epochs_in_csv=4))
    cut = read_run(_csv_run(tmp_path / "cut", epochs_in_csv=2))
    assert whole.ok and len(whole.curves["val/acc"]) == 4
    assert cut.status == "damaged" and not cut.ok
    assert "holds 2 of the 4 validated epochs" in cut.error and "metrics.csv" in cut.error
    (tmp_path / "cut" / "csv" / "metrics.csv").unlink()
    assert "is missing" in read_run(tmp_path / "cut").error


def test_a_damaged_plan_record_is_named_in_one_line(tmp_path):
    from lossbench.tune.runner import check_plan

    (tmp_path / "plan.json").write_text('{"losses": ["ce"], "tri')
    with pytest.raises(DataError, match="plan.json is damaged .*delete it to continue") as err:
        check_plan(_plan(tmp_path))
    assert "\n" not in str(err.value)


def test_a_cut_archive_is_found_without_torch(tmp_path):
    import numpy as np

    from lossbench.integrity import zip_problem

    path = tmp_path / "predictions.npz"
    np.savez(path, probs=np.ones((50, 3)))
    assert zip_problem(path) is None
    path.write_bytes(path.read_bytes()[:300])
    assert "cut off or damaged" in zip_problem(path)


def test_a_finished_run_with_a_damaged_file_trains_again_and_keeps_the_old_files(tmp_path, make_cfg):
    import numpy as np
    import torch

    from lossbench.resume import Resumption
    from lossbench.run_dir import RunDir

    run_dir = _csv_run(tmp_path / "job", epochs_in_csv=4)
    files = RunDir(run_dir)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- loss=ce\n- seed=0\n")
    files.checkpoints.mkdir()
    np.savez(files.predictions, probs=np.ones((50, 3)))
    torch.save({"epoch": 3}, files.last_checkpoint)
    cfg = make_cfg("resume=true", output_dir=run_dir)
    kept = Resumption.prepare(cfg, files, ["loss=ce", "seed=0"], sweep_job=True)
    assert kept.finished is not None, "a finished run whose files are whole is kept"
    files.predictions.write_bytes(files.predictions.read_bytes()[:100])
    again = Resumption.prepare(cfg, files, ["loss=ce", "seed=0"], sweep_job=True)
    assert again.finished is None and again.checkpoint is None
    assert (run_dir / "checkpoints.damaged" / "last.ckpt").is_file() and not files.checkpoints.exists()
    assert (run_dir / "predictions.npz.damaged").is_file() and not files.predictions.exists()


@pytest.mark.parametrize("command", ["tune", "compare"])
def test_an_out_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys, command):
    (tmp_path / "afile").write_text("kept")
    out = str(tmp_path / "afile" / "out")
    if command == "tune":
        status = cli_main(["tune", "--loss", "ce", "--trials", "1", "--seeds", "1", "--out", out])
    else:
        from tests.fake_runs import write_sweep

        status = cli_main(["compare", str(write_sweep(tmp_path)), "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "a file stands where a folder is needed" in err[0]
    assert (tmp_path / "afile").read_text() == "kept"


def test_a_cut_labels_file_makes_the_run_damaged(tmp_path):
    from lossbench.report.collect import read_run

    run_dir = _csv_run(tmp_path / "run", epochs_in_csv=4)
    (run_dir / "labels.json").write_text('{"0": "barolo", "1": "gri')
    run = read_run(run_dir)
    assert run.status == "damaged" and "labels.json is cut off or damaged" in run.error


def test_a_damaged_advise_plan_is_named_in_one_line(tmp_path):
    from lossbench.advise.command import read_plan

    assert read_plan(tmp_path / "advise.json") == {}
    (tmp_path / "advise.json").write_text('{"losses": ["ce"], "pil')
    with pytest.raises(DataError, match="advise.json is damaged .*delete it to plan the study again"):
        read_plan(tmp_path / "advise.json")


def test_a_loss_name_that_would_leave_the_tune_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--loss='../../x' is not a plain folder name"):
        Plan(losses=["ce", "../../x"], trials=1, seeds=1, out=tmp_path)


def test_advise_names_an_out_it_cannot_write_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("kept")
    status = cli_main(["advise", "data=digits", "--budget", "5m", "--out", str(tmp_path / "afile" / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "a file stands where a folder is needed" in err[0]
    assert (tmp_path / "afile").read_text() == "kept"


def test_a_continued_run_removes_a_checkpoint_write_its_stop_cut_off(tmp_path, make_cfg):
    import torch

    from lossbench.resume import Resumption
    from lossbench.run_dir import RunDir

    files = RunDir(tmp_path / "job")
    files.checkpoints.mkdir(parents=True)
    torch.save({"epoch": 3, "lossbench_overrides": ["loss=ce"]}, files.last_checkpoint)
    partial = files.checkpoints / ".best_epoch_004.ckpt.x1y2.tmp"  # AtomicCheckpointIO's temporary file
    partial.write_bytes(b"half a checkpoint")
    cfg = make_cfg("resume=true", "logger=none", output_dir=files.path)
    resumed = Resumption.prepare(cfg, files, ["loss=ce"], sweep_job=True)
    assert resumed.checkpoint == files.last_checkpoint and not partial.exists()
    assert files.last_checkpoint.is_file()


def test_a_stop_after_the_run_wrote_its_record_keeps_it(make_cfg, tmp_path):
    """SIGTERM while W&B finishes, after ``metrics.json`` says ok: the record stays ok (it became
    ``interrupted``, with no test metrics, until resume=true tested the run again)."""
    from lossbench.failures import note_finished
    from lossbench.record import RunRecord, read_record, write_record
    from lossbench.train import stopped

    cfg = make_cfg("logger=none", output_dir=tmp_path)
    write_record(RunRecord("ok", loss="ce", seed=0, test={"test/acc": 0.9}), tmp_path)
    note_finished(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        stopped(RunInterrupted("SIGTERM", "stopped by SIGTERM outside training"), cfg, multirun=False)
    assert exit_info.value.code == 143
    assert read_record(tmp_path).ok and read_record(tmp_path).test == {"test/acc": 0.9}


def test_a_sigterm_python_swallowed_outside_fit_still_stops_the_run(make_cfg, tmp_path, monkeypatch):
    """The handler raised inside a finalizer (Python drops that exception) while the run was outside fit:
    the run still ends as stopped by SIGTERM, with its exit status, once ``run`` returns."""
    from lossbench.train import main

    def run(cfg):
        SignalledInFinalizer()  # collected at once: the stop is raised inside __del__ and dropped
        return {"monitor": {"metric": "val/acc", "best": 0.9}, "test": {"test/acc": 0.9}}

    monkeypatch.setattr("lossbench.run.run", run)
    monkeypatch.setattr("lossbench.train.check_data_files", lambda cfg: None)
    with pytest.raises(SystemExit) as exit_info:
        main(make_cfg("logger=none", output_dir=tmp_path))
    assert exit_info.value.code == 143
