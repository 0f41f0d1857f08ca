"""A user's own package and config directory, written by tests: a loss, a model, a data module and configs.

It stands for code that lives outside lossbench and reaches it only through the documented contracts
(:class:`lossbench.losses.base.BenchLoss`, a model taking ``input_shape``/``num_outputs``,
:class:`lossbench.task.BenchDataModule`) and Hydra's ``hydra.searchpath``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "lb_user_pkg"

LOSS = '''
"""Multiclass squared hinge loss (Weston & Watkins style, one margin against the best wrong class)."""
import torch
from lossbench.losses.base import BenchLoss, upcast


class SquaredHinge(BenchLoss):
    r"""``max(0, margin + max_{j != y} z_j - z_y)^2`` per sample."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = margin

    def per_sample(self, outputs, target):
        z = upcast(outputs)
        true = z.gather(1, target[:, None]).squeeze(1)
        wrong = z.scatter(1, target[:, None], float("-inf")).amax(1)
        return torch.clamp(self.margin + wrong - true, min=0) ** 2
'''

MODEL = '''
"""A two-layer network built from the data's input shape and the loss's output width."""
import math
from torch import nn


class TinyNet(nn.Sequential):
    def __init__(self, input_shape, num_outputs, hidden: int = 32) -> None:
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, num_outputs))
'''

DATA = '''
"""Gaussian blobs as a plain LightningDataModule that provides lossbench's data contract."""
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from lossbench.task import Task


class Blobs(L.LightningDataModule):
    task = Task.CLASSIFICATION
    num_targets = 1

    def __init__(self, n: int = 300, classes: int = 3, features: int = 4, batch_size: int = 32,
                 seed: int = 0) -> None:
        super().__init__()
        self.n, self.num_classes, self.features = n, classes, features
        self.batch_size, self.seed = batch_size, seed
        self.input_shape = (features,)
        self.class_counts = None
        self.parts = {}

    def setup(self, stage=None):
        if self.parts:
            return
        rng = np.random.default_rng(self.seed)
        y = rng.integers(0, self.num_classes, self.n)
        x = rng.normal(size=(self.n, self.features)) + 3.0 * np.eye(self.num_classes, self.features)[y]
        x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
        cut = [int(self.n * 0.6), int(self.n * 0.8)]
        for name, sl in zip(("train", "val", "test"), (slice(0, cut[0]), slice(*cut), slice(cut[1], None))):
            self.parts[name] = TensorDataset(x[sl], y[sl])
        self.class_counts = torch.bincount(y[: cut[0]], minlength=self.num_classes)

    def train_dataloader(self):
        return DataLoader(self.parts["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.parts["val"], batch_size=256)

    def test_dataloader(self):
        return DataLoader(self.parts["test"], batch_size=256)


class NoCounts(Blobs):
    """Breaks the contract: no class counts and no input shape."""

    def setup(self, stage=None):
        super().setup(stage)
        self.class_counts = None
        self.input_shape = None
'''

CONFIGS = {
    "loss/my_hinge.yaml": f"_target_: {PACKAGE}.losses.SquaredHinge\nmargin: 1.0\nreduction: mean\n",
    "model/my_net.yaml": f"_target_: {PACKAGE}.models.TinyNet\nhidden: 32\n",
    "data/my_blobs.yaml": f"_target_: {PACKAGE}.data.Blobs\nn: 300\nbatch_size: 32\nseed: ${{data_seed}}\n",
}


def write_user_package(root: Path) -> tuple[Path, Path]:
    """Write the package under ``root/src`` and its configs under ``root/my_conf``; return both dirs."""
    src, conf = root / "src", root / "my_conf"
    pkg = src / PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, text in (("losses", LOSS), ("models", MODEL), ("data", DATA)):
        (pkg / f"{name}.py").write_text(text.lstrip())
    for rel, text in CONFIGS.items():
        (conf / rel).parent.mkdir(parents=True, exist_ok=True)
        (conf / rel).write_text(text)
    return src, conf
