"""The NaN/Inf guard: checked on the device, read every N steps, the run stopped with good checkpoints."""

from __future__ import annotations

import pytest
import torch

from lossbench.errors import NonFiniteLossError
from lossbench.losses import CrossEntropyLoss
from lossbench.record import read_record
from lossbench.run import run
from tests.conftest import run_cli


def _poison_after(monkeypatch: pytest.MonkeyPatch, calls_before_nan: int) -> None:
    calls = {"n": 0}
    forward = CrossEntropyLoss.forward

    def poisoned(self, outputs, target):
        loss = forward(self, outputs, target)
        if not torch.is_grad_enabled():  # validation and test stay clean
            return loss
        calls["n"] += 1
        return loss * float("nan") if calls["n"] > calls_before_nan else loss

    monkeypatch.setattr(CrossEntropyLoss, "forward", poisoned)


@pytest.mark.parametrize("every", [1, 16, 1000])
@pytest.mark.slow
def test_a_nan_stops_the_run_and_leaves_good_checkpoints(make_cfg, tmp_path, monkeypatch, every):
    """17 steps per epoch, a NaN from step 40 (epoch 2): with reads every 1, 16 or 1000 steps the run
    stops with the first bad step named, and no checkpoint holds weights the NaN reached."""
    _poison_after(monkeypatch, 40)
    with pytest.raises(NonFiniteLossError) as info:
        run(make_cfg("logger=csv", "trainer.max_epochs=5", f"nonfinite_check.every_n_steps={every}"))
    msg = str(info.value)
    assert "CrossEntropyLoss returned nan at step 40 (epoch 2)" in msg and "lower the learning rate" in msg
    assert f"the last good checkpoint is {tmp_path / 'checkpoints' / 'last.ckpt'}" in msg
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 34  # the last epoch before the NaN
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        state = torch.load(path, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values()), path
    assert (tmp_path / "csv" / "metrics.csv").is_file(), "metrics logged before the failure are kept"


def test_a_nan_before_any_checkpoint_says_so(make_cfg, monkeypatch):
    _poison_after(monkeypatch, 3)  # in the first epoch: nothing saved yet
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written before it"):
        run(make_cfg("logger=none", "trainer.max_epochs=2", "nonfinite_check.every_n_steps=1"))


def test_a_failed_run_keeps_its_record_naming_the_loss_it_trained(tmp_path):
    """A single run (not a sweep job) that trained and failed writes ``metrics.json`` as a sweep job does,
    naming the task's baseline loss that ``loss=auto`` became; a config error, found before any run starts,
    writes none into the run dir given on the command line."""
    failed = run_cli(
        "optim.optimizer.lr=1e9",
        "logger=csv",
        "trainer.max_epochs=2",
        f"hydra.run.dir={tmp_path / 'nan'}",
        cwd=tmp_path,
        check=False,
    )
    assert failed.returncode != 0 and "returned nan" in failed.stdout + failed.stderr
    record = read_record(tmp_path / "nan")
    assert record.status == "failed" and record.loss == "ce" and "returned nan" in record.error["message"]
    refused = run_cli("loss=gce", "loss.q=7", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "loss.q" in refused.stdout + refused.stderr
    assert not (tmp_path / "bad" / "metrics.json").exists()
    # a config error found while the Trainer is built: the run dir's record (the failed run's) stays
    run_cli(
        "logger=wandb",
        "logger.wandb.mode=bogus",
        f"hydra.run.dir={tmp_path / 'nan'}",
        cwd=tmp_path,
        check=False,
    )
    assert read_record(tmp_path / "nan").error["message"] == record.error["message"]
