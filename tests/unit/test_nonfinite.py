"""The NaN/Inf guard: checked on the device, read every N steps, the run stopped with good checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from lossbench.errors import NonFiniteLossError
from lossbench.nonfinite import DEFAULT_EVERY_N_STEPS, NonFiniteGuard, default_every_n_steps


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


def test_a_loss_not_finite_before_any_update_is_not_blamed_on_the_learning_rate():
    """At step 0 no update has happened: "lower the learning rate" sent a user whose own loss gives NaN on
    every batch the wrong way."""
    from lossbench.nonfinite import non_finite_message

    first = non_finite_message("MyLoss", float("nan"), 0, 0)
    assert "before any update" in first and "learning rate is not the cause" in first
    assert "lower the learning rate" in non_finite_message("MyLoss", float("nan"), 40, 2)
