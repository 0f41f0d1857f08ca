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

#: idx element types (the header's third byte) -> bytes per element
IDX_TYPES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def idx_problem(path: Path) -> str | None:
    """What is wrong with the idx file at ``path`` (``None``: its header and size agree)."""
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
    return None


def pickle_problem(path: Path) -> str | None:
    """What is wrong with the pickled CIFAR batch at ``path`` (``None``: it unpickles)."""
    try:
        with path.open("rb") as f:
            pickle.load(f, encoding="latin1")  # noqa: S301 - the data set's own format, as torchvision reads it
    except Exception as err:  # noqa: BLE001 - whatever the damage raises
        return f"it does not unpickle ({type(err).__name__}: {str(err) or repr(err)})"
    return None


def first_unreadable(files: list[Path]) -> tuple[Path, str] | None:
    """The first of a data set's ``files`` that cannot be read, with why; ``None`` when each reads."""
    for path in files:
        problem = idx_problem(path) if "idx" in path.name else pickle_problem(path)
        if problem is not None:
            return path, problem
    return None
