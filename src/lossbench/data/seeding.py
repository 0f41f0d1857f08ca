"""The random state a data module is built in: ``data_seed``'s, whatever the module draws.

lossbench's own data modules draw their splits and stressors from generators seeded by ``data_seed``. A
user's module may draw from the global generators instead (``torch.randperm`` for its split, NumPy for
synthetic data); built while they are seeded by ``data_seed``, its split is the same for every loss and
``seed``, as the report says it is. The generators are seeded by ``seed`` again afterwards, so the model's
initialisation follows ``seed`` alone, whatever the module drew.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch


@contextmanager
def seeded_by(data_seed: int, seed: int) -> Iterator[None]:
    """Inside, Python's, NumPy's and torch's global generators are seeded with ``data_seed`` (as
    ``lightning.seed_everything`` seeds them, without the environment variables that give the run's ``seed``
    to the processes it starts); on exit they are seeded with ``seed`` by ``lightning.seed_everything``."""
    random.seed(data_seed)
    np.random.seed(data_seed % 2**32)
    torch.manual_seed(data_seed)
    try:
        yield
    finally:
        L.seed_everything(seed, workers=True, verbose=False)
