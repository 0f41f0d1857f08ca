"""Bad input gets a one-line error that names the problem and the fix."""

from __future__ import annotations

import pytest

from lossbench.errors import ConfigError, LossbenchError

WRONG_TYPES = [
    ("seed=abc", "seed='abc' has the wrong type: expected an integer"),
    ("trainer.max_epochs=many", "trainer.max_epochs='many' has the wrong type"),
    ("loss=focal loss.gamma=high", "loss.gamma='high' has the wrong type: expected a number"),
]
INVALID = [
    ("loss=focal loss.gamma=-1", "loss.gamma=-1 is out of range: expected a value in [0, inf]"),
    ("loss=huber loss.delta=0", "loss.delta=0 is out of range: expected a value in (0, inf]"),
    ("loss.label_smoothing=1.0", "loss.label_smoothing=1.0 is out of range: expected a value in [0, 1)"),
    ("loss.reduction=median", "loss.reduction='median' is not valid: choose one of mean, sum, none"),
    ("loss=quantile data=diabetes loss.q=1.5", "loss.q=1.5 is out of range: expected a value in (0, 1)"),
    ("loss=gce loss.q=0", "loss.q=0 is out of range: expected a value in (0, 1]"),
    ("loss=class_balanced loss.beta=1.0", "loss.beta=1.0 is out of range: expected a value in [0, 1)"),
    ("loss.reduction=none", "loss.reduction='none' gives one loss per sample"),
    (
        "nonfinite_check.every_n_steps=0",
        "nonfinite_check.every_n_steps=0 is out of range: expected a value in [1, inf]",
    ),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1 is out of range"),
    ("trainer.gradient_clip_algorithm=max", "trainer.gradient_clip_algorithm='max' is not valid"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0 is out of range"),
]


@pytest.mark.parametrize(("override", "expected"), WRONG_TYPES)
def test_wrong_value_type(make_cfg, override, expected):
    from lossbench.run import run

    with pytest.raises(LossbenchError) as info:
        run(make_cfg(*override.split(), "logger=none"))
    assert expected in str(info.value)


@pytest.mark.parametrize(("override", "expected"), INVALID)
def test_invalid_hyper_parameter(make_cfg, override, expected):
    from lossbench.run import run

    with pytest.raises(ConfigError) as info:
        run(make_cfg(*override.split(), "logger=none"))
    assert expected in str(info.value)


def test_class_count_loss_on_regression_data_is_a_task_mismatch(make_cfg):
    from lossbench.errors import LossTaskMismatchError
    from lossbench.run import run

    with pytest.raises(LossTaskMismatchError, match="loss=ldam cannot train on data=diabetes"):
        run(make_cfg("loss=ldam", "data=diabetes", "logger=none"))


def test_bce_pos_weight_must_match_the_outputs(make_cfg):
    from lossbench.errors import ConfigError
    from lossbench.run import run

    with pytest.raises(ConfigError, match="loss.pos_weight has 2 values but the model has 1 output"):
        run(make_cfg("loss=bce", "data=breast_cancer", "loss.pos_weight=[1.0,2.0]", "logger=none"))
