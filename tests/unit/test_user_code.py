"""A user's own loss, model, data module and configs train without editing lossbench, also from the wheel."""

from __future__ import annotations

import pytest

from lossbench.errors import ConfigError
from lossbench.task import check_data_contract


def test_contract_check_names_every_missing_part():
    class Empty:
        task = "classification"

    with pytest.raises(ConfigError) as info:
        check_data_contract(Empty(), "data=x")
    msg = str(info.value)
    for part in (
        "train_dataloader",
        "val_dataloader",
        "test_dataloader",
        "input_shape",
        "num_classes",
        "class_counts",
    ):
        assert part in msg
    Empty.task = "ranking"
    with pytest.raises(ConfigError, match="task \\(one of classification, regression, multilabel\\)"):
        check_data_contract(Empty())


class _Module:
    """A DataModule from outside lossbench whose first batch is ``batch`` (set per test)."""

    task, num_classes, num_targets, input_shape, batch = "classification", 3, 1, (4,), None

    def train_dataloader(self):
        import torch

        torch.rand(1)  # as a shuffling loader draws from the global generator
        return [self.batch]


_Module.__module__ = "mypkg.data"


@pytest.mark.parametrize(
    ("task", "y", "named"),
    [
        ("classification", "float", r"y: class indices \[B\] of an integer dtype, got torch.float32 \[8\]"),
        ("classification", "column", r"y: class indices \[B\] of an integer dtype, got torch.int64 \[8, 1\]"),
        ("classification", "too_big", r"y: class indices in 0..2, got 0..3"),
        ("regression", "long", r"y: float targets \[B, 1\], got torch.int64"),
        ("multilabel", "long", r"y: 0/1 labels \[B, 3\], got \[8\]"),
    ],
)
def test_a_first_batch_that_does_not_fit_the_declared_task_is_named_before_training(task, y, named):
    import torch

    from lossbench.batch_contract import check_first_batch

    targets = {
        "float": torch.zeros(8),
        "column": torch.zeros(8, 1, dtype=torch.long),
        "too_big": torch.tensor([0, 1, 2, 3] * 2),
        "long": torch.zeros(8, dtype=torch.long),
    }
    dm = _Module()
    dm.task, dm.batch = task, (torch.zeros(8, 4), targets[y])
    before = torch.get_rng_state()
    with pytest.raises(ConfigError, match=named):
        check_first_batch(dm, "data=mine")
    assert torch.equal(torch.get_rng_state(), before), "the run's random draws are left as they were"
    dm.task, dm.batch = "classification", (torch.zeros(8, 4), torch.tensor([0, 1, 2, 0] * 2))
    check_first_batch(dm, "data=mine")
    dm.batch = (torch.zeros(8, 5), dm.batch[1])
    with pytest.raises(ConfigError, match=r"x of shape \[B, 4\] \(input_shape\), got \[8, 5\]"):
        check_first_batch(dm, "data=mine")


def test_a_validation_or_test_batch_that_does_not_fit_stops_the_run_at_that_batch():
    """A label out of range in a user's test split would fail in the metrics after training; the check
    names the split and the batch. lossbench's own data modules are not checked."""
    from types import SimpleNamespace

    import torch

    from lossbench.batch_contract import BatchContract
    from lossbench.data.sklearn import SklearnDataModule
    from lossbench.errors import DataError

    dm = _Module()
    trainer, check = SimpleNamespace(datamodule=dm), BatchContract()
    check.setup(trainer, None, "fit")
    good = (torch.zeros(8, 4), torch.tensor([0, 1, 2, 0] * 2))
    check.on_validation_batch_start(trainer, None, good, 0)
    check.on_test_batch_start(trainer, None, good, 5)
    with pytest.raises(
        DataError, match=r"mypkg.data._Module declares task=classification, but batch 5 of its test"
    ):
        check.on_test_batch_start(trainer, None, (good[0], torch.tensor([0, 1, 2, 3] * 2)), 5)
    with pytest.raises(
        DataError, match=r"batch 2 of its validation split .* class indices in 0..2, got -1..2"
    ):
        check.on_validation_batch_start(trainer, None, (good[0], torch.tensor([0, 1, 2, -1] * 2)), 2)
    ours = SimpleNamespace(datamodule=SklearnDataModule.__new__(SklearnDataModule))
    check.setup(ours, None, "test")
    check.on_test_batch_start(ours, None, (good[0], torch.tensor([7] * 8)), 0)  # not checked: ours


class RandomSplit:
    """A user's data module that draws its split from the global generator (``torch.randperm``)."""

    task, num_classes, num_targets, input_shape = "classification", 2, 1, (3,)

    def __init__(self) -> None:
        self.parts: dict = {}

    def prepare_data(self) -> None:
        pass

    def setup(self, stage=None) -> None:
        import torch

        order = torch.randperm(60)
        x, y = torch.randn(60, 3), torch.arange(60) % 2
        parts = zip(("train", "val", "test"), order.split([40, 10, 10]), strict=True)
        self.parts = {k: (x[i], y[i]) for k, i in parts}
        self.class_counts = torch.bincount(self.parts["train"][1], minlength=2)

    def train_dataloader(self):
        return [self.parts["train"]]

    def val_dataloader(self):
        return [self.parts["val"]]

    def test_dataloader(self):
        return [self.parts["test"]]


def test_a_user_modules_split_follows_data_seed_and_leaves_the_model_to_seed(make_cfg):
    """Built while the global generators are seeded by ``data_seed``: the split is the same for every
    ``seed``, and what is drawn next (the model's initialisation) follows ``seed`` alone."""
    import lightning as L
    import torch

    from lossbench.build import build_data

    def built(seed: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = make_cfg("data=datamodule", f"data._target_={__name__}.RandomSplit", f"seed={seed}",
                       f"data_seed={data_seed}")  # fmt: skip
        L.seed_everything(seed, verbose=False)
        dm = build_data(cfg)
        return dm.parts["train"][0], torch.rand(3)

    (split_0, next_0), (split_1, next_1), (split_d, _) = built(0, 0), built(1, 0), built(0, 1)
    assert torch.equal(split_0, split_1), "every seed trains on the same split"
    assert not torch.equal(split_0, split_d), "another data_seed, another split"
    L.seed_everything(1, verbose=False)
    assert torch.equal(next_1, torch.rand(3)) and not torch.equal(next_0, next_1)


def test_lightnings_later_setup_calls_draw_the_same_split_and_leave_the_training_stream(make_cfg):
    """Lightning calls ``setup`` again in fit, validate and test, when the global generators follow
    ``seed``: each call draws the split the run was built with (a split drawn anew would differ per seed and
    overlap the test split with the training one), and leaves the generators as they were. The module,
    pickled for ``ddp_spawn``, keeps that."""
    import pickle
    import random

    import lightning as L
    import numpy as np
    import torch

    from lossbench.build import build_data

    cfg = make_cfg("data=datamodule", f"data._target_={__name__}.RandomSplit", "seed=3", "data_seed=5")
    dm = build_data(cfg)
    built = {k: i[0].clone() for k, i in dm.parts.items()}
    for module in (dm, pickle.loads(pickle.dumps(dm))):
        for stage in ("fit", "validate", "test"):
            L.seed_everything(11, verbose=False)
            torch.rand(7), np.random.rand(2), random.random()  # the training has drawn since
            states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
            module.setup(stage=stage)
            assert all(torch.equal(module.parts[k][0], x) for k, x in built.items()), stage
            assert torch.equal(torch.get_rng_state(), states[0]), "torch's stream is left as it was"
            assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


class DrawsFirst(RandomSplit):
    """Draws from the global generators in ``__init__`` and ``prepare_data``, before its first ``setup``;
    its ``setup`` is an attribute of the instance."""

    def __init__(self) -> None:
        import torch

        super().__init__()
        torch.randn(5)
        self.calls: list = []
        self.setup = self.own_setup

    def prepare_data(self) -> None:
        import torch

        torch.rand(1)

    def own_setup(self, stage=None) -> None:
        self.calls.append(stage)
        RandomSplit.setup(self, stage)


def test_the_first_setup_draws_what_the_later_ones_draw_and_an_instances_own_setup_is_called(make_cfg):
    import torch

    from lossbench.build import build_data

    dm = build_data(make_cfg("data=datamodule", f"data._target_={__name__}.DrawsFirst", "data_seed=2"))
    built, counts = dm.parts["train"][0].clone(), dm.class_counts.tolist()
    dm.setup(stage="fit")
    assert torch.equal(dm.parts["train"][0], built) and dm.class_counts.tolist() == counts
    assert dm.calls == ["fit", "fit"]


def test_a_modules_own_description_keeps_the_contracts_fields():
    """A user's ``describe()`` adds to ``metrics.json``'s ``data_info``; the fields the report reads (the
    class counts pick the headline metric) stay, from the contract where it leaves them out or ``None``."""
    import torch

    from lossbench.build import describe_data

    class Described(RandomSplit):
        def describe(self):
            return {"source": "lab", "num_classes": None}

    dm = Described()
    dm.setup()
    info = describe_data(dm)
    assert info["source"] == "lab" and info["num_classes"] == 2 and info["input_shape"] == [3]
    assert info["class_counts"] == torch.bincount(dm.parts["train"][1]).tolist()
