"""A user's own loss, model and batches meet the contract's edges with the contract's shapes or one error
naming the fix: a one-column regression target, a multi-label loss without the mixin, a loss that is not a
``BenchLoss``, a model without parameters, float64 inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lossbench.batch_contract import check_first_batch
from lossbench.build import build_data, build_loss, build_module
from lossbench.errors import ConfigError
from lossbench.losses.base import BenchLoss
from lossbench.task import Task


class SquaredError(BenchLoss):
    """Written for the documented ``[N, T]`` targets: a ``[N]`` target would broadcast to ``[N, N]``."""

    tasks = frozenset({Task.REGRESSION})

    def per_sample(self, outputs, target):
        assert target.shape == outputs.shape, (target.shape, outputs.shape)
        return ((outputs - target) ** 2).mean(1)


class OwnMultilabel(BenchLoss):
    """A multi-label loss with its own outputs, without ``MultilabelOutputs``."""

    tasks = frozenset({Task.MULTILABEL})

    def per_sample(self, outputs, target):
        return nn.functional.binary_cross_entropy_with_logits(outputs, target.float(), reduction="none").mean(
            1
        )


class NoParameters(nn.Module):
    def __init__(self, input_shape, num_outputs) -> None:
        super().__init__()
        self.num_outputs = num_outputs

    def forward(self, x):
        return torch.zeros(len(x), self.num_outputs)


def test_a_one_column_regression_target_reaches_per_sample_as_a_column():
    outputs, target = torch.randn(8, 1), torch.randn(8)
    expected = ((outputs[:, 0] - target) ** 2).mean()
    assert torch.allclose(SquaredError()(outputs, target), expected)


def test_a_multilabel_loss_of_its_own_takes_float_labels_and_one_output_per_label():
    loss = OwnMultilabel()
    assert loss.num_outputs(Task.MULTILABEL, 4) == 4
    target = (torch.rand(8, 4) > 0.5).float()
    assert torch.isfinite(loss(torch.randn(8, 4), target))
    with pytest.raises(TypeError, match=r"serves multi-label tasks only and expects multi-hot 0/1 targets"):
        loss(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="0/1"):
        loss(torch.randn(8, 4), torch.full((8, 4), 2.0))


def test_a_loss_without_per_sample_says_what_to_implement():
    class Unfinished(BenchLoss):
        pass

    with pytest.raises(NotImplementedError, match=r"Unfinished must implement per_sample\(outputs, target\)"):
        Unfinished()(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))


def test_a_loss_that_is_not_a_bench_loss_or_a_model_without_parameters_is_refused(make_cfg):
    with pytest.raises(ConfigError, match=r"loss._target_=torch.nn.MSELoss is not a lossbench.losses.base."):
        build_loss(make_cfg("loss=ce", "loss._target_=torch.nn.MSELoss"), None)
    cfg = make_cfg(f"model._target_={__name__}.NoParameters", "~model.hidden_dims", "~model.dropout")
    with pytest.raises(ConfigError, match=r"has no parameters to train: the optimizer would get none"):
        build_module(cfg, build_data(cfg))


def test_float64_inputs_are_named_before_training_unless_the_run_trains_in_float64():
    class Float64:
        task, num_classes, num_targets, input_shape = "classification", 2, 1, (3,)

        def train_dataloader(self):
            return [(torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 0, 1]))]

    Float64.__module__ = "mypkg.data"
    with pytest.raises(ConfigError, match=r"x as float32 to train in trainer.precision=32-true, got float64"):
        check_first_batch(Float64(), "data=mine", "32-true")
    check_first_batch(Float64(), "data=mine", "64-true")


def test_a_stressor_given_to_a_users_own_module_names_what_takes_it(make_cfg):
    cfg = make_cfg(
        "data=datamodule", "data._target_=tests.unit.test_user_code.RandomSplit", "+data.imbalance_factor=10"
    )
    said = r"could not be built with its \+data.<arg> keys .*imbalance_factor.*built on lossbench.data.base."
    with pytest.raises(ConfigError, match=said + "InMemoryDataModule"):
        build_data(cfg)
