"""Which file of a vision data set is unreadable, and why: torchvision's parsers fail with a reason that
names no file (``shape '[300, 28, 28]' is invalid``, ``pickle data was truncated``, a bare
``AssertionError``), so each file is read on its own after they fail.

An idx file (MNIST, Fashion-MNIST) is a header (two zero bytes, the element type, the number of
dimensions, each dimension as a big-endian 32-bit integer) and the elements: its size follows from the
header. A CIFAR batch is one pickle.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

#: values per image of a CIFAR batch's ``data`` rows (3 channels of 32x32)
CIFAR_PIXELS = 3 * 32 * 32
#: idx element types (the header's third byte) -> bytes per element
IDX_TYPES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def idx_problem(path: Path) -> str | None:
    """What is wrong with the idx file at ``path`` (``None``: its header and size agree, and it holds
    images ``[N, H, W]`` or labels ``[N]`` as its name says)."""
    data = path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES or not 1 <= data[3] <= 4:
        return f"not an idx file (its first bytes are {data[:4].hex() or 'missing'}, not 0000 <type> <dims>)"
    header = 4 + 4 * data[3]
    if len(data) < header:
        return f"its header is cut off ({len(data)} bytes)"
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(data[3])]
    expected = header + math.prod(dims) * IDX_TYPES[data[2]]
    if len(data) != expected:
        return f"its header says {dims} elements ({expected} bytes), but it has {len(data)} bytes: cut off"
    kind, ndim = ("images", 3) if "images" in path.name else ("labels", 1)
    if len(dims) != ndim:
        return f"it holds an array of shape {dims}, not {kind} ({ndim} dimension(s)): another file's data"
    return None


def pickle_problem(path: Path) -> str | None:
    """What is wrong with the pickled CIFAR batch at ``path`` (``None``: it unpickles)."""
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="latin1")  # noqa: S301 - the data set's own format, as torchvision reads it
    except Exception as err:  # noqa: BLE001 - whatever the damage raises
        return f"it does not unpickle ({type(err).__name__}: {str(err) or repr(err)})"
    if not isinstance(batch, dict) or "data" not in batch:  # the meta file: its label names
        return None if isinstance(batch, dict) else f"it holds a {type(batch).__name__}, not a batch"
    shape = list(np.shape(batch["data"]))
    labels = batch.get("labels", batch.get("fine_labels"))
    if len(shape) != 2 or shape[1] != CIFAR_PIXELS:
        return f"its data has shape {shape}, not [N, {CIFAR_PIXELS}] (32x32 RGB images)"
    if labels is None or len(labels) != shape[0]:
        return f"it holds {shape[0]} images but {'no' if labels is None else len(labels)} labels"
    return None


def md5_mismatch(cls: type, root: Path) -> Path | None:
    """The first file of the CIFAR data set ``cls`` under ``root`` whose MD5 sum is not the official one."""
    from torchvision.datasets.utils import check_integrity

    for name, md5 in [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]:
        path = Path(root) / cls.base_folder / name
        if path.is_file() and not check_integrity(str(path), md5):
            return path
    return None


def first_unreadable(files: list[Path]) -> str | None:
    """``<file> cannot be read: <why>`` of the first of a data set's ``files`` that cannot be read;
    ``None`` when each reads."""
    for path in files:
        problem = idx_problem(path) if "idx" in path.name else pickle_problem(path)
        if problem is not None:
            return f"{path} cannot be read: {problem}"
    return None
