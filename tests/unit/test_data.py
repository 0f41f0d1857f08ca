"""Tabular and synthetic data modules, both loader paths, label checks, training on stressed data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lossbench.data import (
    InMemoryDataModule,
    SklearnDataModule,
    SyntheticClassificationDataModule,
    SyntheticRegressionDataModule,
    TensorBatchLoader,
)
from lossbench.errors import DataError
from lossbench.losses.base import Task


@pytest.mark.parametrize(
    ("name", "task", "shape", "classes"),
    [
        ("digits", Task.CLASSIFICATION, (64,), 10),
        ("breast_cancer", Task.CLASSIFICATION, (30,), 2),
        ("wine", Task.CLASSIFICATION, (13,), 3),
        ("diabetes", Task.REGRESSION, (10,), None),
    ],
)
def test_sklearn_data_sets(name, task, shape, classes):
    dm = SklearnDataModule(name=name)
    dm.setup()
    assert dm.task is task and dm.input_shape == shape and dm.num_classes == classes
    x_train = dm.splits["train"][0]
    assert torch.allclose(x_train.mean(0), torch.zeros(shape), atol=1e-4)  # standardised on train only
    sizes = [len(dm.splits[s][1]) for s in ("train", "val", "test")]
    assert sizes[0] > sizes[1] > 0 and sizes[2] > 0


def test_synthetic_data_sets():
    blobs = SyntheticClassificationDataModule(n_samples=1000, n_classes=5, imbalance_factor=10)
    blobs.setup()
    assert blobs.num_classes == 5 and blobs.class_counts.tolist()[0] == 10 * blobs.class_counts.tolist()[-1]
    assert torch.bincount(blobs.splits["test"][1]).tolist() == [40] * 5  # the test split stays balanced
    for target in ("linear", "nonlinear"):
        reg = SyntheticRegressionDataModule(target=target, n_samples=500, outlier_fraction=0.1)
        reg.setup()
        assert reg.task is Task.REGRESSION and reg.describe()["n_outliers"] == 30


def _batches(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return [tuple(t.clone() for t in b) for b in loader]


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_tensor_and_torch_loaders_give_the_same_batches(split):
    tensor_dm = SklearnDataModule(name="digits", batch_size=50, eval_batch_size=100, seed=3)
    torch_dm = SklearnDataModule(name="digits", batch_size=50, eval_batch_size=100, seed=3, loader="torch")
    tensor_dm.setup()
    torch_dm.setup()
    train = split == "train"
    a = tensor_dm._loader(split, train)
    b = torch_dm._loader(split, train)
    assert isinstance(a, TensorBatchLoader) and isinstance(b, DataLoader) and len(a) == len(b)
    for epoch in (0, 1):
        ba, bb = _batches(a, epoch), _batches(b, epoch)
        assert len(ba) == len(bb)
        assert all(xa.equal(xb) and ya.equal(yb) for (xa, ya), (xb, yb) in zip(ba, bb, strict=True))
        assert sum(len(y) for _, y in ba) == len(tensor_dm.splits[split][1])
    if train:
        assert not _batches(a, 0)[0][1].equal(_batches(a, 1)[0][1]), "shuffled differently per epoch"


def test_overfit_batches_trains_on_the_same_first_batches_every_epoch():
    """Lightning turns a DataLoader's shuffling off for trainer.overfit_batches; it cannot for ours."""
    from types import SimpleNamespace

    for loader in ("tensor", "torch"):
        dm = SklearnDataModule(name="digits", batch_size=50, seed=3, loader=loader)
        dm.setup()
        cpu = SimpleNamespace(root_device=torch.device("cpu"))
        dm.trainer = SimpleNamespace(overfit_batches=3, global_rank=0, world_size=1, strategy=cpu)
        batches = [_batches(dm._loader("train", True), epoch)[0][1] for epoch in (0, 1)]
        assert batches[0].equal(batches[1]) and batches[0].equal(dm.splits["train"][1][:50]), loader


class _Labels(InMemoryDataModule):
    def __init__(self, y, **kwargs):
        self.y = np.asarray(y)
        super().__init__(**kwargs)

    def load_arrays(self):
        return np.random.default_rng(0).normal(size=(len(self.y), 3)), self.y


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        ([0, 1, 2, -1] * 10, {}, r"label -1 is outside \[0, 3\)"),
        ([0, 1, 2, 5] * 10, {"num_classes": 4}, r"label 5 is outside \[0, 4\).*data.num_classes"),
        ([0.0, 1.5] * 20, {}, "labels must be integer class indices"),
    ],
)
def test_labels_outside_range_are_one_line_errors(labels, kwargs, match):
    with pytest.raises(DataError, match=match) as info:
        _Labels(labels, **kwargs).setup()
    assert "\n" not in str(info.value)


def test_float_labels_that_are_integers_are_accepted():
    dm = _Labels([0.0, 1.0, 2.0] * 10)
    dm.setup()
    assert dm.num_classes == 3 and dm.splits["train"][1].dtype == torch.long


@pytest.mark.parametrize("loader", ["tensor", "torch"])
def test_an_evaluation_split_smaller_than_the_ddp_processes_is_refused_when_fit_asks_for_its_loader(loader):
    """Each DDP process evaluates its own share of the validation and test splits: one left without a batch
    failed Lightning's loader check, the test split's only after training, while the others waited."""
    from types import SimpleNamespace

    dm = _Labels([0, 1] * 20, loader=loader)  # 24 / 8 / 8
    dm.setup()
    cpu = SimpleNamespace(root_device=torch.device("cpu"))
    dm.trainer = SimpleNamespace(global_rank=0, world_size=9, overfit_batches=0, strategy=cpu)
    with pytest.raises(DataError, match=r"the val split has 8 sample\(s\), the test split has 8 sample\(s\), "
                       r"fewer than the 9 DDP processes.*trainer.devices"):  # fmt: skip
        dm.val_dataloader()
    dm.trainer.world_size = 8
    assert dm.val_dataloader() is not None
    dm = _Labels([0, 1] * 100, test_fraction=0.01, loader=loader)  # 157 / 41 / 2
    dm.setup()
    dm.trainer = SimpleNamespace(global_rank=0, world_size=4, overfit_batches=0, strategy=cpu)
    with pytest.raises(DataError, match=r"the test split has 2 sample\(s\), .*with test=false"):
        dm.train_dataloader()
    dm.tested = False  # test=false: the test split is never read
    assert dm.train_dataloader() is not None and dm.val_dataloader() is not None


def test_a_run_that_does_not_test_tells_its_data_module_so(make_cfg):
    from lossbench.build import build_data

    assert build_data(make_cfg()).tested and not build_data(make_cfg("test=false")).tested
