"""The NaN/Inf guard: checked on the device, read every N steps, the run stopped with good checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from lossbench.errors import NonFiniteLossError
from lossbench.losses import CrossEntropyLoss
from lossbench.nonfinite import DEFAULT_EVERY_N_STEPS, NonFiniteGuard, default_every_n_steps
from lossbench.run import run


def _message(value: float, step: int) -> str:
    return f"{value} at {step}"


def test_reads_only_every_n_steps_and_names_the_first_bad_step():
    guard = NonFiniteGuard(5, _message)
    losses = [1.0, float("nan"), float("inf"), 2.0]
    for step, value in enumerate(losses):
        guard.observe(torch.tensor(value), step)  # no read yet: a NaN at step 1 does not raise here
    with pytest.raises(NonFiniteLossError, match=r"^nan at 1$"):
        guard.observe(torch.tensor(3.0), 4)  # the 5th call reads the flag


def test_read_raises_between_periods_and_clean_losses_never_raise():
    guard = NonFiniteGuard(100, _message)
    for step in range(250):
        guard.observe(torch.tensor(0.5), step)
    guard.read()
    guard.observe(torch.tensor(-math.inf), 250)
    with pytest.raises(NonFiniteLossError, match=r"^-inf at 250$"):
        guard.read()  # e.g. before a validation or a checkpoint


def test_every_step_reads_before_the_backward_pass():
    guard = NonFiniteGuard(1, _message)
    guard.observe(torch.tensor(1.0), 0)
    with pytest.raises(NonFiniteLossError, match=r"^nan at 1$"):
        guard.observe(torch.tensor(float("nan")), 1)


def test_the_default_reads_every_step_only_where_a_read_is_free():
    assert default_every_n_steps(torch.device("cpu"), 1) == 1
    assert default_every_n_steps(torch.device("cpu"), 2) == DEFAULT_EVERY_N_STEPS
    assert default_every_n_steps(torch.device("cuda", 0), 1) == DEFAULT_EVERY_N_STEPS


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
