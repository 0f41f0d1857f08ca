"""A user's own loss, model and DataModule are held to their documented contracts before training."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn

from lossbench.batch_contract import BatchContract, batch_problems
from lossbench.errors import ConfigError, DataError
from lossbench.losses.cross_entropy import CrossEntropyLoss
from lossbench.step_contract import check_first_step
from lossbench.task import Task, check_data_contract


class OwnNet(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.layer = nn.Linear(4, width)

    def forward(self, x):
        return self.layer(x)


class PerSample(CrossEntropyLoss):
    def forward(self, outputs, target):
        return self.per_sample(outputs, target)  # not reduced


class SigmoidProbabilities(CrossEntropyLoss):
    def probabilities(self, outputs):
        return torch.sigmoid(outputs)


class OneHotPredictions(CrossEntropyLoss):
    def predictions(self, outputs):
        return torch.softmax(outputs, -1)


def check(model: nn.Module, loss: nn.Module) -> None:
    check_first_step(SimpleNamespace(model=model, loss=loss), Task.CLASSIFICATION, 3, 1, (4,))


def test_an_own_model_or_loss_that_breaks_the_contract_is_named_before_training():
    """Each trained or failed late: a width the loss does not take failed in the metrics with a
    torchmetrics traceback, a loss per sample at step 0, and probabilities that do not sum to 1 or
    predictions that are not class indices gave wrong metrics without a word."""
    check(OwnNet(3), CrossEntropyLoss())  # keeps it
    with pytest.raises(ConfigError, match=r"the model gives outputs \[2, 4\], the loss needs \[B, 3\]"):
        check(OwnNet(4), CrossEntropyLoss())
    with pytest.raises(ConfigError, match=r"the loss gives \[2\], not one number to minimise"):
        check(OwnNet(3), PerSample())
    with pytest.raises(ConfigError, match=r"class probabilities that sum to 1\.\d+, not 1"):
        check(OwnNet(3), SigmoidProbabilities())
    with pytest.raises(ConfigError, match=r"predictions torch.float32 \[2, 3\], not class indices \[2\]"):
        check(OwnNet(3), OneHotPredictions())
    model = OwnNet(3).train()
    check(model, CrossEntropyLoss())
    assert model.training, "the probe leaves the model in training mode"


class TrainOnly(L.LightningDataModule):
    """Defines train_dataloader only (its validation and test hooks are LightningDataModule's)."""

    task = "nonsense"
    input_shape = None

    def train_dataloader(self):
        return [(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))]


def test_a_data_module_is_told_every_part_of_the_contract_it_misses():
    """The inherited val/test hooks passed as present (fit then raised Lightning's "must be
    implemented"), and a bad task hid every other missing attribute."""
    with pytest.raises(ConfigError) as err:
        check_data_contract(TrainOnly(), "data=datamodule")
    said = str(err.value)
    assert "a val_dataloader() method" in said and "a test_dataloader() method" in said
    assert "train_dataloader" not in said and "task (one of" in said and "input_shape" in said


def test_later_batches_are_held_to_the_contract_too():
    """A multi-label target of 2s passed the check of shapes; a class index out of range in a later
    training batch failed in the loss with an IndexError (a device-side assert on a GPU)."""
    x = torch.zeros(3, 4)
    assert batch_problems((x, torch.tensor([[0, 1], [1, 2], [0, 0]])), Task.MULTILABEL, 2, 1, (4,)) == [
        "y: 0/1 labels, got values such as 2"
    ]
    contract = BatchContract()
    contract.declared = (Task.CLASSIFICATION, 3, 1, (4,))
    trainer = SimpleNamespace(datamodule=TrainOnly())
    contract.on_train_batch_start(trainer, None, (x, torch.tensor([0, 1, 2])), 0)
    with pytest.raises(
        DataError, match=r"batch 7 of its training split does not fit it: .*0\.\.2, got 0\.\.7"
    ):
        contract.on_train_batch_start(trainer, None, (x, torch.tensor([0, 1, 7])), 7)


def test_an_own_model_that_cannot_be_imported_is_one_line_naming_it(make_cfg):
    from lossbench.run import run

    with pytest.raises(ConfigError, match=r"model._target_=mypkg.models.Nope cannot be imported"):
        run(make_cfg("model._target_=mypkg.models.Nope", "logger=none"))


def test_an_own_regression_model_may_give_one_column_as_a_vector():
    """``[N]`` is ``[N, 1]`` to a regression loss (``lossbench.losses.targets.as_columns``)."""
    from lossbench.losses import MSELoss

    class Vector(nn.Module):
        def forward(self, x):
            return x.sum(-1)

    check_first_step(SimpleNamespace(model=Vector(), loss=MSELoss()), Task.REGRESSION, None, 1, (4,))
    with pytest.raises(ConfigError, match=r"outputs \[2\], the loss needs \[B, 2\]"):
        check_first_step(SimpleNamespace(model=Vector(), loss=MSELoss()), Task.REGRESSION, None, 2, (4,))
