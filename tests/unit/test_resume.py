"""resume=true and ckpt_path=: SIGKILL then resume, same metrics and W&B run; weights-only loading."""

from __future__ import annotations

import pytest

from lossbench.run import run


def test_missing_checkpoint_path_is_a_clear_error(make_cfg):
    """A config error (on the command line: one line, exit status 2, as test_errors checks)."""
    from lossbench.errors import ConfigError

    with pytest.raises(ConfigError, match="ckpt_path=/nope/last.ckpt does not exist"):
        run(make_cfg("ckpt_path=/nope/last.ckpt", "logger=none"))


def test_wandb_run_id_continues_the_checkpoints_run(tmp_path):
    from lossbench.resume import wandb_run_id

    first, second = tmp_path / "first", tmp_path / "second"
    new_id = wandb_run_id(first, None)
    assert len(new_id) == 8 and (first / "wandb_run_id").read_text().strip() == new_id
    assert wandb_run_id(first, None) != new_id, "a fresh run gets a fresh id"
    ckpt = first / "checkpoints" / "last.ckpt"
    assert wandb_run_id(second, ckpt) == (first / "wandb_run_id").read_text().strip()
    fresh = wandb_run_id(tmp_path / "third", tmp_path / "elsewhere" / "checkpoints" / "x.ckpt")
    assert len(fresh) == 8 and fresh != new_id, "a checkpoint from a dir without an id starts a new W&B run"
    assert (tmp_path / "third" / "wandb_run_id").read_text().strip() == fresh
    assert not (tmp_path / "elsewhere").exists(), "nothing is written beside a foreign checkpoint"


def test_a_sweep_job_stopped_before_its_first_last_checkpoint_starts_again_without_its_rows(
    make_cfg, tmp_path
):
    """It appended its rows to the stopped start's (epoch 0 twice) and kept a second best checkpoint."""
    from lossbench.resume import Resumption
    from lossbench.run_dir import RunDir

    run_dir = RunDir(tmp_path / "job")
    run_dir.csv.parent.mkdir(parents=True)
    run_dir.csv.write_text("epoch,step,train/loss,val/acc\n0,17,0.9,\n0,17,,0.8\n")
    run_dir.checkpoints.mkdir()
    (run_dir.checkpoints / "best_epoch_000.ckpt").write_bytes(b"written before last.ckpt")
    cfg = make_cfg("resume=true", output_dir=run_dir.path)
    assert Resumption.prepare(cfg, run_dir, [], sweep_job=True).checkpoint is None
    assert run_dir.csv.read_text() == "epoch,step,train/loss,val/acc\n"
    assert not run_dir.checkpoints.exists()
    assert (run_dir.path / "checkpoints.earlier" / "best_epoch_000.ckpt").is_file(), "renamed, not deleted"


def test_a_second_process_on_a_run_dir_in_use_is_refused(tmp_path):
    import subprocess
    import sys

    from lossbench.errors import ConfigError
    from lossbench.run_dir_claim import run_dir_lock

    holder = "import sys, time; from pathlib import Path; from lossbench.run_dir_claim import run_dir_lock\n"
    holder += "with run_dir_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(30)\n"
    proc = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        in_use = pytest.raises(ConfigError, match="in use by another process continuing the same run")
        with in_use, run_dir_lock(tmp_path):
            pass
    finally:
        proc.kill()
        proc.wait()
    with run_dir_lock(tmp_path):  # released with its process, killed or not
        pass
    assert list(tmp_path.iterdir()) == [], "no lock file in the run dir"


def test_a_best_checkpoint_written_after_the_last_one_is_set_aside_on_resume(tmp_path):
    """A stop between the best and the last writes left best_epoch_002 beside the run's real best."""
    import torch

    from lossbench.resume_files import set_aside_later_checkpoints
    from lossbench.run_dir import RunDir

    run_dir = RunDir(tmp_path)
    run_dir.checkpoints.mkdir()
    best = run_dir.checkpoints / "best_epoch_001.ckpt"
    state = {
        "best_model_path": str(best),
        "best_k_models": {str(best): torch.tensor(0.9)},
        "last_model_path": "",
    }
    torch.save({"epoch": 1, "callbacks": {"TieBreakingCheckpoint{...}": state}}, run_dir.last_checkpoint)
    best.write_bytes(b"epoch 1")
    (run_dir.checkpoints / "best_epoch_002.ckpt").write_bytes(b"epoch 2, after the last checkpoint")
    last = run_dir.last_checkpoint
    moved = set_aside_later_checkpoints(run_dir, last, torch.load(last, weights_only=True))
    assert [p.name for p in moved] == ["best_epoch_002.ckpt.earlier"]
    assert sorted(p.name for p in run_dir.checkpoints.glob("*.ckpt")) == ["best_epoch_001.ckpt", "last.ckpt"]


def test_a_resume_drops_the_rows_logged_after_its_checkpoint_those_without_an_epoch_too(tmp_path):
    """A checkpoint at the end of epoch 1, global step 34 (17 batches an epoch): the rows of epoch 2 go,
    and so do the learning-rate rows (logged by ``LearningRateMonitor`` without an epoch, at the step of
    the next optimizer step) from step 34 on; a run trained again from the start drops every row."""
    from lossbench.resume_files import drop_csv_rows_after_epoch

    metrics = tmp_path / "metrics.csv"
    rows = ["epoch,lr-AdamW,step,train/loss,val/acc", ",0.001,0,,", ",0.001,17,,", "0,,16,0.9,", "0,,16,,0.8"]
    rows += ["1,,33,0.5,", "1,,33,,0.9", ",0.001,34,,", "2,,50,0.4,"]
    metrics.write_text("\n".join(rows) + "\n")
    assert drop_csv_rows_after_epoch(metrics, 1, 34) == 2
    assert metrics.read_text().splitlines() == rows[:-2]
    assert drop_csv_rows_after_epoch(metrics, -1) == 6
    assert metrics.read_text().splitlines() == rows[:1]
    # an append a kill cut off: "12,,210,0.3," cut to "1" would read as epoch 1
    metrics.write_bytes(("\r\n".join(rows[:6]) + "\r\n1").encode())  # as the csv module writes it
    assert drop_csv_rows_after_epoch(metrics, 1, 34) == 1
    assert metrics.read_text().splitlines() == rows[:6]


def test_a_moved_run_dir_continues_with_its_own_best_checkpoint_and_score(make_cfg, tmp_path):
    """Lightning reads a ``ModelCheckpoint`` state saved under another folder without its best score and
    with the old folder's best path: a moved run dir continued with resume=true failed on the old path
    (its files were gone) or took its next epoch as its best. Its checkpoints' states name the files here."""
    from pathlib import Path

    first = run(make_cfg("trainer.max_epochs=3", "logger=csv", output_dir=tmp_path / "old"))
    (tmp_path / "old").rename(tmp_path / "new")
    (tmp_path / "new" / "metrics.json").unlink()  # stopped after its last epoch, before its record
    again = run(make_cfg("trainer.max_epochs=3", "logger=csv", "resume=true", output_dir=tmp_path / "new"))
    best_file = Path(first["monitor"]["best_checkpoint"]).name
    assert Path(again["monitor"]["best_checkpoint"]) == tmp_path / "new" / "checkpoints" / best_file
    assert again["monitor"]["best"] == first["monitor"]["best"]
    assert again["test"] == first["test"]


def test_a_checkpoint_state_of_another_run_is_left_to_lightning(tmp_path):
    """``ckpt_path=`` another run's checkpoint: its files are not in this run's folder, so its state stays
    as saved (Lightning keeps only its best path, and this run's best is one of its own epochs)."""
    from lossbench.checkpointing import moved_here

    saved = {"dirpath": "/old/checkpoints", "best_model_path": "/old/checkpoints/best_epoch_002.ckpt"}
    saved |= {"best_model_score": 0.9, "best_k_models": {"/old/checkpoints/best_epoch_002.ckpt": 0.9}}
    here = tmp_path / "checkpoints"
    here.mkdir()
    assert moved_here(saved, str(here)) is saved
    (here / "best_epoch_002.ckpt").write_bytes(b"")
    moved = moved_here(saved, str(here))
    assert moved["best_model_path"] == str(here / "best_epoch_002.ckpt") and moved["dirpath"] == str(here)
    assert moved["best_k_models"] == {str(here / "best_epoch_002.ckpt"): 0.9}
    assert moved_here(saved, "/old/checkpoints") is saved


def test_the_csv_rewritten_with_a_wider_header_is_whole_or_as_it_was(tmp_path, monkeypatch):
    """The test row widens the header at a run's end and the file is written again: a kill then left an
    empty metrics.csv of a finished run's curves. The rewrite replaces the file whole, or not at all."""
    import lossbench.atomic_files
    from lossbench.csv_logger import CSVMetricsWriter

    writer = CSVMetricsWriter(str(tmp_path))
    writer.log_metrics({"epoch": 0, "val/acc": 0.5}, step=9)
    writer.save()
    before = (tmp_path / "metrics.csv").read_text()

    def killed(src, dst):
        raise KeyboardInterrupt  # stopped between the write and the rename

    monkeypatch.setattr(lossbench.atomic_files.os, "replace", killed)
    writer.log_metrics({"epoch": 1, "test/acc": 0.75}, step=19)
    with pytest.raises(KeyboardInterrupt):
        writer.save()
    assert (tmp_path / "metrics.csv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"], "no temporary file left"
    monkeypatch.undo()
    writer.save()
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1:] == ["0,9,,0.5", "1,19,0.75,"]
