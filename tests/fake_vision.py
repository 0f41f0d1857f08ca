"""Write small data sets in the native on-disk formats torchvision parses (no download in tests).

MNIST / Fashion-MNIST: big-endian idx files (magic 0x0803 images, 0x0801 labels) under
``<root>/<MNIST|FashionMNIST>/raw/``, uncompressed as torchvision leaves them after extracting.
CIFAR-10 / 100: pickled dicts with ``data`` (uint8 ``[n, 3072]``, channel-major rows) and ``labels`` /
``fine_labels``, plus the ``batches.meta`` / ``meta`` file. These are not the official files, so their
MD5 sums differ: tests read CIFAR with ``verify_checksums=False`` (see ``lossbench.data.vision``).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def _idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 | array.ndim
    path.write_bytes(
        struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    )


def write_mnist(
    root: Path,
    name: str = "MNIST",
    n_train: int = 200,
    n_test: int = 50,
    seed: int = 0,
    num_classes: int = 10,
) -> dict[str, np.ndarray]:
    """Class-dependent 28×28 images (a bright bar per class plus noise), labels balanced."""
    rng = np.random.default_rng(seed)
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = (np.arange(n) % num_classes).astype(np.uint8)
        rng.shuffle(y)
        x = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, 2 + 2 * (c % 10) : 4 + 2 * (c % 10), 4:24] = 255
        _idx(raw / f"{split}-images-idx3-ubyte", x)
        _idx(raw / f"{split}-labels-idx1-ubyte", y)
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


def write_cifar(
    root: Path, name: str = "cifar10", per_batch: int = 240, n_test: int = 100, seed: int = 0
) -> dict[str, np.ndarray]:
    """CIFAR-10 (5 training batches) or CIFAR-100 (one ``train`` file) with class-coloured images."""
    rng = np.random.default_rng(seed)
    c100 = name == "cifar100"
    classes = 100 if c100 else 10
    folder = root / ("cifar-100-python" if c100 else "cifar-10-batches-py")
    folder.mkdir(parents=True, exist_ok=True)
    key = "fine_labels" if c100 else "labels"

    def batch(n: int) -> tuple[np.ndarray, list[int]]:
        y = (np.arange(n) % classes).tolist()
        x = rng.integers(0, 80, size=(n, 3, 32, 32), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, c % 3, :, 4 * (c % 8) : 4 * (c % 8) + 4] = 250
        return x, y

    def dump(path: Path, x: np.ndarray, y: list[int]) -> None:
        entry = {"data": x.reshape(len(x), -1), key: y, "batch_label": path.name}
        path.write_bytes(pickle.dumps(entry))

    train_files = ["train"] if c100 else [f"data_batch_{i}" for i in range(1, 6)]
    xs, ys = [], []
    for f in train_files:
        x, y = batch(per_batch * (5 if c100 else 1))
        dump(folder / f, x, y)
        xs.append(x)
        ys += y
    tx, ty = batch(n_test)
    dump(folder / "test", tx, ty) if c100 else dump(folder / "test_batch", tx, ty)
    meta_key, meta_file = ("fine_label_names", "meta") if c100 else ("label_names", "batches.meta")
    (folder / meta_file).write_bytes(pickle.dumps({meta_key: [f"class{i}" for i in range(classes)]}))
    return {"train_x": np.concatenate(xs), "train_y": np.array(ys), "test_x": tx, "test_y": np.array(ty)}
