"""What a packed replica's record says when its group is stopped: as an ordinary run's stop, the epoch it
was stopped in and what its ``last.ckpt`` holds, if it has one."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from lossbench.errors import RunInterrupted
from lossbench.packed.run_files import stopped_replica
from lossbench.run_dir import RunDir


def test_a_replica_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    cfg = OmegaConf.create({"trainer": {"max_epochs": 5}})
    run_dir = RunDir(tmp_path / "sweep" / "0")
    said = str(stopped_replica(RunInterrupted("SIGTERM", ""), cfg, run_dir, tmp_path / "sweep"))
    assert said.startswith("stopped by SIGTERM during epoch 0, before this job's first epoch finished")
    assert "resume=true" in said and "holds" not in said


def test_a_replica_with_a_last_checkpoint_names_its_epoch_and_the_next(tmp_path):
    run_dir = RunDir(tmp_path / "sweep" / "0")
    run_dir.last_checkpoint.parent.mkdir(parents=True)
    torch.save({"epoch": 2}, run_dir.last_checkpoint)
    stop = RunInterrupted("SIGINT", "")
    said = str(stopped_replica(stop, OmegaConf.create({"trainer": {"max_epochs": 5}}), run_dir, tmp_path))
    assert said.startswith(f"stopped by SIGINT during epoch 3: {run_dir.last_checkpoint} holds epoch 2,")
    done = str(stopped_replica(stop, OmegaConf.create({"trainer": {"max_epochs": 3}}), run_dir, tmp_path))
    assert done.startswith("stopped by SIGINT after its last epoch:"), done
