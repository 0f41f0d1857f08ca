"""Faults a run survives: SIGTERM, Ctrl-C, Slurm requeue, a killed sweep, a full disk, runs at once."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import OmegaConf

from lossbench.checkpointing import AtomicCheckpointIO
from lossbench.errors import CheckpointWriteError, ConfigError
from lossbench.interrupt import RunInterrupted, interrupted_message, stopped_by_signal
from lossbench.resume import OVERRIDES_KEY, finished_run, read_checkpoint, resume_checkpoint
from lossbench.wandb_mode import resolve_wandb_mode


# --- the pieces, without a subprocess -----------------------------------------------------------------
def test_checkpoint_write_is_atomic_and_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}

    def disk_full(obj, f):
        f.write(b"\x00" * 100)  # part of the file, then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointWriteError, match=f"could not write the checkpoint {path}.*No space left"):
        io.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}, "the previous checkpoint is intact"
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"], "no temporary file left behind"


def test_the_trainer_writes_checkpoints_through_the_atomic_writer(make_cfg):
    from hydra.utils import instantiate

    trainer = instantiate(make_cfg("logger=none").trainer, logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_damaged_checkpoint_is_named_with_the_fix(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    torch.save({"epoch": 3, "state_dict": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:600])  # cut off, as a killed copy leaves it
    with pytest.raises(ConfigError, match=f"{path} cannot be read as a checkpoint.*ckpt_path=<file>") as err:
        read_checkpoint(path)
    assert "zip archive" in str(err.value) and "likely" not in str(err.value), "torch's first sentence"
    with pytest.raises(ConfigError, match="cannot be read"):
        resume_checkpoint(OmegaConf.create({"resume": True}), tmp_path, [])


class _RunsCode:
    def __reduce__(self) -> tuple:
        return (print, ("unpickled",))


def test_a_checkpoint_holding_python_objects_is_refused_as_such(tmp_path):
    path = tmp_path / "foreign.ckpt"
    torch.save({"epoch": 3, "state_dict": {}, "extra": _RunsCode()}, path)
    with pytest.raises(ConfigError, match="holds Python objects besides tensors") as err:
        read_checkpoint(path)
    assert "cut off" not in str(err.value)


def test_resume_of_a_run_that_failed_before_its_first_checkpoint_says_it_failed(tmp_path):
    from lossbench.record import RunRecord, write_record

    error = {"type": "NonFiniteLossError", "message": "CrossEntropyLoss returned nan at step 2 (epoch 0)"}
    write_record(RunRecord("failed", loss="ce", seed=0, error=error), tmp_path)
    with pytest.raises(
        ConfigError, match=r"failed before its first epoch ended.*returned nan at step 2.*fix"
    ):
        resume_checkpoint(OmegaConf.create({"resume": True}), tmp_path, [])


def test_resume_checkpoint_in_a_sweep(tmp_path):
    cfg = OmegaConf.create({"resume": True})
    assert resume_checkpoint(cfg, tmp_path, ["loss=ce"], sweep_job=True) is None  # never started: start
    with pytest.raises(ConfigError, match="resume=true found no earlier run"):
        resume_checkpoint(cfg, tmp_path, ["loss=ce"])
    (tmp_path / "checkpoints").mkdir()
    torch.save({"epoch": 4, OVERRIDES_KEY: ["seed=1", "loss=ce"]}, tmp_path / "checkpoints" / "last.ckpt")
    found = resume_checkpoint(cfg, tmp_path, ["loss=ce", "resume=true", "seed=1"], sweep_job=True)
    assert found == tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"belongs to a run with other overrides \(loss=ce seed=1\)"):
        resume_checkpoint(cfg, tmp_path, ["loss=focal", "seed=1"], sweep_job=True)


def test_resume_without_a_matching_run_names_how_the_newest_run_differs(tmp_path):
    """``resume=true loss=focal data=digits`` beside a run started as ``loss=ce``: the newest run with a
    ``last.ckpt`` and how its overrides differ, a default spelled out included."""
    cfg = OmegaConf.create({"resume": True})
    base = tmp_path / "outputs" / "train"
    for stamp, loss in (("10-00-00", "ce"), ("11-00-00", "mse")):
        run_dir = base / "2026-12-07" / stamp
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text(f"- loss={loss}\n- seed=1\n")
        torch.save({"epoch": 4}, run_dir / "checkpoints" / "last.ckpt")
    os.utime(base / "2026-12-07" / "10-00-00" / "checkpoints" / "last.ckpt", (1, 1))  # the older one
    new = base / "2026-12-07" / "12-00-00"
    new.mkdir()
    with pytest.raises(ConfigError) as err:
        resume_checkpoint(cfg, new, ["loss=focal", "seed=1", "data=digits", "resume=true"])
    assert f"the newest one there, {base / '2026-12-07' / '11-00-00'}, was started with" in str(err.value)
    assert "was started with loss=mse, without data=digits loss=focal (resume=true needs" in str(err.value)
    given = tmp_path / "mine"  # hydra.run.dir=mine: no run beside it is this one's
    given.mkdir()
    with pytest.raises(ConfigError, match=r"found no earlier run with the same overrides .* in the outputs"):
        resume_checkpoint(cfg, given, ["loss=focal", "seed=1"])


def test_finished_run_keeps_only_ok_jobs_with_the_same_overrides(tmp_path):
    metrics = tmp_path / "metrics.json"
    assert finished_run(tmp_path, []) is None
    metrics.write_text('{"status": "ok", "overr')
    assert finished_run(tmp_path, []) is None, "a cut-off record: run the job again"
    metrics.write_text(json.dumps({"status": "failed", "overrides": ["loss=ce"]}))
    assert finished_run(tmp_path, ["loss=ce"]) is None
    metrics.write_text(json.dumps({"status": "ok", "overrides": ["loss=ce"], "monitor": {"best": 0.9}}))
    assert finished_run(tmp_path, ["resume=true", "loss=ce"])["monitor"]["best"] == 0.9
    with pytest.raises(ConfigError, match="other overrides"):
        finished_run(tmp_path, ["loss=mse"])


def test_lightning_exits_on_signals_become_run_interrupted():
    trainer = SimpleNamespace(interrupted=True)
    with pytest.raises(RunInterrupted) as term, stopped_by_signal(trainer):
        raise SIGTERMException
    assert term.value.exit_status == 143
    with pytest.raises(RunInterrupted) as ctrl_c, stopped_by_signal(trainer):
        raise SystemExit(1)  # what Lightning does after a KeyboardInterrupt
    assert ctrl_c.value.exit_status == 130
    with pytest.raises(SystemExit), stopped_by_signal(SimpleNamespace(interrupted=False)):
        raise SystemExit(3)  # not Lightning's: passed on


def test_interrupted_message_names_the_epoch_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "loss=ce,focal", "hydra.sweep.dir=old"])
    last = tmp_path / "last.ckpt"
    line = interrupted_message("SIGTERM", 8, last, 7, Path("multirun/x"))
    assert line == (
        f"stopped by SIGTERM during epoch 8: {last} holds epoch 7, the last one finished. Continue with: "
        "python train.py -m loss=ce,focal resume=true hydra.sweep.dir=multirun/x"
    )
    assert "no checkpoint to continue from" in interrupted_message("SIGINT", 0, last, None, None)
    in_sweep = interrupted_message("SIGTERM", 0, last, None, Path("multirun/x"))  # the sweep goes on
    again = "python train.py -m loss=ce,focal resume=true hydra.sweep.dir=multirun/x"
    assert in_sweep.endswith(
        f"before this job's first epoch finished (it starts again). Continue with: {again}"
    )
    tested = interrupted_message("SIGTERM", 40, last, 39, None, fitting=False)  # the fit had ended
    assert tested.startswith(f"stopped by SIGTERM after training, while testing: {last} holds epoch 39")
    # stopped between the fit's last epoch and its end: a run of 5 epochs (0-4) has no epoch 5
    ended = interrupted_message("SIGTERM", None, last, 4, None)
    assert ended.startswith(f"stopped by SIGTERM after its last epoch: {last} holds epoch 4")


@pytest.mark.parametrize("value", ["bogus", ""])
def test_wandb_mode_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("WANDB_MODE", value)
    if value:
        with pytest.raises(ConfigError, match="WANDB_MODE=bogus in the environment is not a W&B mode"):
            resolve_wandb_mode("offline")
    else:  # empty means unset: the config's mode
        assert resolve_wandb_mode("disabled") == "disabled"


def test_a_wrong_configured_wandb_mode_is_named_also_where_wandb_mode_overrides_it(monkeypatch):
    """A typo in logger.wandb.mode hidden by WANDB_MODE=offline here would surface on a machine without
    it (a cluster): it is named either way."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(ConfigError, match="logger.wandb.mode='foo' is not valid"):
        resolve_wandb_mode("foo")
    assert resolve_wandb_mode("dryrun") == "offline" and resolve_wandb_mode("online") == "offline"
