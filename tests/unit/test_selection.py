"""The best epoch: strictly better on the monitored metric, or equal with a lower validation NLL; the
same rule for Lightning's checkpoint callback and for the packed replicas."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from lossbench.packed.selection import BestWeights
from lossbench.selection import TieBreakingCheckpoint, replaces


def test_the_rule():
    assert replaces(0.5, None, "max", None, None), "the first epoch always counts"
    assert replaces(0.6, 0.5, "max", 9.0, 1.0) and not replaces(0.4, 0.5, "max", 0.1, 1.0)
    assert replaces(0.5, 0.5, "max", 0.9, 1.0), "a tie with a lower NLL replaces"
    assert not replaces(0.5, 0.5, "max", 1.0, 1.0) and not replaces(0.5, 0.5, "max", 1.1, 1.0)
    assert not replaces(0.5, 0.5, "max", None, 1.0) and not replaces(0.5, 0.5, "max", math.nan, 1.0)
    assert replaces(1.0, 2.0, "min", None, None) and not replaces(math.nan, 2.0, "min", 0.0, 1.0)


class FlatAccuracy(L.LightningModule):
    """Validation accuracy flat at 0.5 from epoch 1 on, validation NLL falling every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        epoch = self.current_epoch
        self.log("val/acc", 0.4 if epoch == 0 else 0.5)
        self.log("val/nll", 2.0 - 0.1 * epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=2)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(2, 1), batch_size=2)


@pytest.mark.parametrize("tie_break", ["val/nll", None])
def test_the_checkpoint_callback_breaks_ties_by_nll(tmp_path, tie_break):
    best = TieBreakingCheckpoint(
        dirpath=tmp_path,
        filename="best_{epoch:03d}",
        monitor="val/acc",
        mode="max",
        tie_break=tie_break,
        auto_insert_metric_name=False,
    )
    trainer = L.Trainer(
        max_epochs=5,
        callbacks=[best],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(FlatAccuracy())
    expected = "best_004.ckpt" if tie_break else "best_001.ckpt"
    assert best.best_model_path.endswith(expected) and [p.name for p in tmp_path.iterdir()] == [expected]
    state = best.state_dict()
    again = TieBreakingCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max")
    again.load_state_dict(state)
    assert again.best_tie == (pytest.approx(1.6) if tie_break else None)


def test_packed_replicas_choose_by_the_same_rule():
    best = BestWeights("val/acc", "max")
    for epoch in range(5):
        best.update({"val/acc": 0.4 if epoch == 0 else 0.5, "val/nll": 2.0 - 0.1 * epoch}, epoch, {})
    assert best.epoch == 4
