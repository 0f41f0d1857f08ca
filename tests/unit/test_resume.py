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
    assert wandb_run_id(tmp_path / "third", tmp_path / "elsewhere" / "checkpoints" / "x.ckpt") != ""
    assert not (tmp_path / "elsewhere").exists(), "nothing is written beside a foreign checkpoint"
