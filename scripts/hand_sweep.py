"""The sweep baseline of ``make bench``: losses × seeds on digits, hand-written, in one process.

    python scripts/hand_sweep.py --losses ce,focal --seeds 3 --epochs 20

The same work as ``python train.py -m loss=... seed=...`` with the default config, written as a plain
PyTorch script with no framework: the stratified 60/20/20 split of scikit-learn's digits (standardised on
the training split), the same MLP (256-256, dropout 0.1), AdamW (lr 1e-3, weight decay 1e-4), batch 64,
20 epochs; each epoch a shuffled pass over the training split and a validation pass (accuracy); the
weights of the best validation epoch kept in memory and tested once. Each loss is lossbench's own class,
built from its ``conf/loss/<name>.yaml``, so the loss computation is the same. It imports neither
Lightning nor Hydra's app machinery. Prints one JSON line with the wall time and each run's test accuracy.

``--lightning`` runs the same work through the least Lightning can do it with: a bare ``LightningModule``
(automatic optimization) and a ``Trainer`` with no logger, no callbacks, no checkpoints, no progress bar
and no sanity check, the best weights kept in memory as above. ``make bench`` reports it as the floor a
Lightning-based sweep cannot go below.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra.utils import get_class, instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from torch import nn  # noqa: E402

from lossbench.losses.base import Task  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "src" / "lossbench" / "conf"


def epoch_seed(seed: int, epoch: int) -> int:
    """The training order's generator seed, as ``lossbench.data.loader.epoch_seed`` (not imported: the
    ``lossbench.data`` package loads Lightning)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def splits(data_seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    x, y = load_digits(return_X_y=True)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=0.2, stratify=y, random_state=data_seed)
    train, val = train_test_split(rest, test_size=0.25, stratify=y[rest], random_state=data_seed)
    scaler = StandardScaler().fit(x[train])
    x = torch.from_numpy(scaler.transform(x).astype(np.float32))
    y = torch.from_numpy(y.astype(np.int64))
    return {k: (x[np.sort(i)], y[np.sort(i)]) for k, i in (("train", train), ("val", val), ("test", test))}


def mlp(inputs: int, classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    width = inputs
    for h in (256, 256):
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(0.1)]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def accuracy(model: nn.Module, loss: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((loss.predictions(model(x)) == y).float().mean())


def batches(x: torch.Tensor, y: torch.Tensor, size: int, seed: int, epoch: int):
    """The ``(x, y)`` batches of one training epoch, in lossbench's order for ``(seed, epoch)``."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
    for i in range(0, len(y), size):
        idx = order[i : i + size]
        yield x[idx], y[idx]


def build(name: str, x: torch.Tensor, y: torch.Tensor) -> tuple[nn.Module, nn.Module]:
    """lossbench's ``name`` loss (from its config) and the MLP for the features of ``x``."""
    classes = int(y.max()) + 1
    cfg = OmegaConf.load(CONF / "loss" / f"{name}.yaml")
    counts = {"class_counts": torch.bincount(y, minlength=classes).tolist()}
    needs_counts = getattr(get_class(cfg._target_), "needs_class_counts", False)
    loss = instantiate(cfg, **(counts if needs_counts else {}))
    return loss, mlp(x.shape[1], loss.num_outputs(Task.CLASSIFICATION, classes, 1))


def one_run(name: str, seed: int, data: dict, epochs: int, batch_size: int = 64) -> float:
    torch.manual_seed(seed)
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    loss, model = build(name, x, y)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    best, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        for xb, yb in batches(x, y, batch_size, seed, epoch):
            value = loss(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
        acc = accuracy(model, loss, xv, yv)
        if acc > best:
            best, best_state = acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return accuracy(model, loss, xt, yt)


def lightning_run(name: str, seed: int, data: dict, epochs: int, batch_size: int = 64) -> float:
    """:func:`one_run` through a bare LightningModule and Trainer (imported here, only for this mode)."""
    import lightning as L

    class Epochs:
        """:func:`batches` of the next epoch on each pass (one pass: the whole split as one batch)."""

        def __init__(self, x: torch.Tensor, y: torch.Tensor, size: int | None = None) -> None:
            self.x, self.y, self.size, self.epoch = x, y, size, 0

        def __len__(self) -> int:
            return -(-len(self.y) // self.size) if self.size else 1

        def __iter__(self):  # a generator: the epoch advances when Lightning starts reading, not at iter()
            if not self.size:
                yield self.x, self.y
                return
            self.epoch += 1
            yield from batches(self.x, self.y, self.size, seed, self.epoch - 1)

    class Bare(L.LightningModule):
        def __init__(self, loss: nn.Module, model: nn.Module) -> None:
            super().__init__()
            self.loss, self.model = loss, model
            self.best, self.best_state = -1.0, None

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss(self.model(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            acc = (self.loss.predictions(self.model(x)) == y).float().mean()
            self.log("val/acc", acc)
            if float(acc) > self.best:
                self.best, self.best_state = float(acc), copy.deepcopy(self.model.state_dict())

        def test_step(self, batch, batch_idx):
            x, y = batch
            self.log("test/acc", (self.loss.predictions(self.model(x)) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=1e-4)

    torch.manual_seed(seed)
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    loss, model = build(name, x, y)
    module = Bare(loss, model)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, deterministic=True, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, Epochs(x, y, batch_size), Epochs(xv, yv))
    model.load_state_dict(module.best_state)
    return float(trainer.test(module, Epochs(xt, yt), verbose=False)[0]["test/acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", default="ce")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lightning", action="store_true", help="a bare LightningModule and Trainer")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True, warn_only=True)  # as trainer=cpu
    data = splits()
    train = lightning_run if args.lightning else one_run
    runs = [
        {"loss": name, "seed": seed, "test_acc": train(name, seed, data, args.epochs)}
        for name in args.losses.split(",")
        for seed in range(args.seeds)
    ]
    print(json.dumps({"wall_s": time.perf_counter() - START, "runs": runs}))


if __name__ == "__main__":
    main()
