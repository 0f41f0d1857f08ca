"""``metrics.json``: one record, written atomically, read back as a record or a clear missing/unreadable."""

from __future__ import annotations

import json
import os

import pytest

from lossbench import record as rec
from lossbench.record import SCHEMA_VERSION, RunRecord, read_record, write_record


def finished() -> RunRecord:
    return RunRecord(
        "ok",
        loss="focal",
        data="digits",
        model="mlp",
        seed=1,
        data_seed=0,
        overrides=["loss=focal", "seed=1"],
        monitor={"metric": "val/acc", "mode": "max", "best": 0.9, "best_checkpoint": "/r/best.ckpt"},
        val={"val/acc": 0.9, "val/nll": float("nan")},
        test={"test/acc": 0.88},
        epochs=3,
        data_info={"task": "classification", "n_train": 100, "labels": None},
        wall_s=1.5,
        timings={"fit": 1.0},
        config={"seed": 1, "logger": {"csv": {}}},
    )


def test_a_record_reads_back_as_written(tmp_path):
    record = finished()
    path = write_record(record, tmp_path / "run")
    assert path == tmp_path / "run" / "metrics.json"
    back = read_record(tmp_path / "run")
    assert back.ok and back.reason == "" and back.version == SCHEMA_VERSION
    assert json.dumps(back.to_dict()) == json.dumps(record.to_dict())  # NaN included
    on_disk = json.loads(path.read_text())
    assert list(on_disk)[:2] == ["version", "status"] and "error" not in on_disk and "job_num" not in on_disk
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["metrics.json"], "no temporary file left"


def test_a_failed_record_gives_its_error_in_one_line(tmp_path):
    error = {"type": "ConfigError", "message": "loss.gamma=-1 must be >= 0", "traceback": "Traceback ..."}
    write_record(RunRecord("failed", loss="focal", error=error, job_num=3), tmp_path)
    back = read_record(tmp_path)
    assert back.status == "failed" and back.job_num == 3 and back.test is None and back.overrides is None
    assert back.reason == "ConfigError: loss.gamma=-1 must be >= 0"


def test_an_old_record_without_version_reads_as_version_1(tmp_path):
    old = {
        "status": "ok",
        "loss": "ce",
        "seed": 0,
        "monitor": {"metric": "val/acc", "mode": "max", "best": 0.9, "best_checkpoint": ""},
        "test": {"test/acc": 0.8},
        "wall_s": 12,  # an integer where a float is expected
        "evaluated_checkpoint": "/r/checkpoints/best.ckpt",
        "a_key_of_some_other_tool": 1,
    }
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    back = read_record(tmp_path)
    assert back.ok and back.version == 1 and back.test == {"test/acc": 0.8} and back.wall_s == 12
    assert back.evaluated_checkpoint == "/r/checkpoints/best.ckpt"
    assert "a_key_of_some_other_tool" not in back.to_dict()


def test_no_file_reads_as_missing(tmp_path):
    back = read_record(tmp_path / "never_ran")
    assert back.status == "missing" and not back.ok and "no metrics.json" in back.reason


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"status": "ok", "test": {"test/ac', "cut off or not JSON"),
        ("[1, 2, 3]", "holds a JSON array, not an object"),
        ("", "cut off or not JSON"),
        ('{"loss": "ce"}', "no status"),
        ('{"status": "done"}', "status 'done' is not one of ok, failed, interrupted"),
        ('{"status": "ok", "version": 2}', "schema version 2"),
        ('{"status": "ok", "test": [0.9]}', "test is a JSON array, not object"),
        ('{"status": "ok", "seed": "0"}', "seed is a JSON string, not integer"),
        ('{"status": "ok", "wall_s": true}', "wall_s is a JSON boolean, not number"),
        ('{"status": "ok", "overrides": [1]}', "overrides holds something other than strings"),
    ],
)
def test_a_file_of_another_shape_reads_as_unreadable_with_the_reason(tmp_path, text, why):
    (tmp_path / "metrics.json").write_text(text)
    back = read_record(tmp_path)
    assert back.status == "unreadable" and not back.ok
    assert back.reason.startswith("unreadable metrics.json: ") and why in back.reason


def test_a_failing_write_leaves_the_previous_record(tmp_path, monkeypatch):
    write_record(finished(), tmp_path)
    before = (tmp_path / "metrics.json").read_bytes()

    def broken_dumps(*args, **kwargs):
        raise TypeError("not serializable")

    monkeypatch.setattr(rec.json, "dumps", broken_dumps)
    with pytest.raises(TypeError):
        write_record(RunRecord("failed"), tmp_path)
    monkeypatch.undo()

    def broken_replace(src, dst):  # e.g. a full disk: the temporary file never becomes the record
        raise OSError(28, "No space left on device")

    import lossbench.atomic_files

    monkeypatch.setattr(lossbench.atomic_files.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_record(RunRecord("failed"), tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "metrics.json").read_bytes() == before
    assert os.listdir(tmp_path) == ["metrics.json"], "the temporary file is removed"


def test_the_readers_agree_on_what_a_run_dir_holds(tmp_path):
    from lossbench.report.collect import read_run
    from lossbench.resume import finished_run
    from lossbench.sweep import read_job

    job = tmp_path / "0"
    job.mkdir()
    (job / "metrics.json").write_text('{"status": "ok", "te')
    assert read_job(job)["status"] == read_run(job).status == "unreadable"
    assert "cut off" in read_job(job)["error"] and finished_run(job, []) is None
    write_record(finished(), job)
    assert read_job(job)["headline"] == ("test/acc", 0.88) and read_run(job).metrics["test/acc"] == 0.88
    assert finished_run(job, ["seed=1", "loss=focal", "resume=true"])["monitor"]["best"] == 0.9
