"""The sweep baseline of ``make bench``: losses × seeds on digits, hand-written, in one process.

    python scripts/hand_sweep.py --losses ce,focal --seeds 3 --epochs 20

The same work as ``python train.py -m loss=... seed=...`` with the default config, written as a plain
PyTorch script with no framework: the stratified 60/20/20 split of scikit-learn's digits (standardised on
the training split), the same MLP (256-256, dropout 0.1), AdamW (lr 1e-3, weight decay 1e-4), batch 64,
20 epochs; each epoch a shuffled pass over the training split and a validation pass (accuracy); the
weights of the best validation epoch kept in memory and tested once. Each loss is lossbench's own class,
built from its ``conf/loss/<name>.yaml``, so the loss computation is the same. It imports neither
Lightning nor Hydra's app machinery. Prints one JSON line with the wall time and each run's test accuracy.
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

from lossbench.data.loader import epoch_seed  # noqa: E402
from lossbench.losses.base import Task  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "src" / "lossbench" / "conf"


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


def one_run(name: str, seed: int, data: dict, epochs: int, batch_size: int = 64) -> float:
    torch.manual_seed(seed)
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    classes = int(y.max()) + 1
    cfg = OmegaConf.load(CONF / "loss" / f"{name}.yaml")
    counts = {"class_counts": torch.bincount(y, minlength=classes).tolist()}
    needs_counts = getattr(get_class(cfg._target_), "needs_class_counts", False)
    loss = instantiate(cfg, **(counts if needs_counts else {}))
    model = mlp(x.shape[1], loss.num_outputs(Task.CLASSIFICATION, classes, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    best, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            value = loss(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
        acc = accuracy(model, loss, xv, yv)
        if acc > best:
            best, best_state = acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return accuracy(model, loss, xt, yt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", default="ce")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True, warn_only=True)  # as trainer=cpu
    data = splits()
    runs = [
        {"loss": name, "seed": seed, "test_acc": one_run(name, seed, data, args.epochs)}
        for name in args.losses.split(",")
        for seed in range(args.seeds)
    ]
    print(json.dumps({"wall_s": time.perf_counter() - START, "runs": runs}))


if __name__ == "__main__":
    main()
