"""The random state a data module is built in: ``data_seed``'s, whatever the module draws.

lossbench's own data modules draw their splits and stressors from generators seeded by ``data_seed``. A
user's module may draw from the global generators instead (``torch.randperm`` for its split, NumPy for
synthetic data); built while they are seeded by ``data_seed``, its split is the same for every loss and
``seed``, as the report says it is. The generators are seeded by ``seed`` again afterwards, so the model's
initialisation follows ``seed`` alone, whatever the module drew. Lightning calls the module's ``setup`` again
in ``fit``, ``validate`` and ``test``: :class:`SeededSetup` draws each of those calls from ``data_seed`` too
and leaves the training's generators as they were.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


class SeededSetup:
    """The ``setup`` of ``module`` run while Python's, NumPy's and torch's (CPU) global generators are seeded
    by ``data_seed``, their states put back afterwards.

    Set as the module's ``setup`` before its first call (:func:`lossbench.build.build_data`), it gives that
    call and the ones Lightning makes in ``fit``, ``validate`` and ``test`` the same random state, whatever
    the module drew before (in ``__init__``, in ``prepare_data``): a split drawn from the global generators is
    the one the run was built with (not one drawn anew, overlapping the test split with the training one),
    and what the call draws leaves the training's random stream unchanged. A module-level class, pickled
    with its module for ``ddp_spawn``; a ``setup`` the module set on itself is the one called."""

    def __init__(self, module: Any, data_seed: int) -> None:
        self.module = module
        self.data_seed = data_seed
        self.own = vars(module).get("setup")  # a setup the instance holds, else its class's is called

    def __call__(self, stage: str | None = None) -> None:
        python, numpy = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(self.data_seed)
            np.random.seed(self.data_seed % 2**32)
            torch.random.default_generator.manual_seed(self.data_seed)
            try:
                if self.own is not None:
                    self.own(stage)
                else:
                    type(self.module).setup(self.module, stage)
            finally:
                random.setstate(python)
                np.random.set_state(numpy)


def seed_setup(module: Any, data_seed: int) -> None:
    """Make every ``setup`` call of ``module`` a :class:`SeededSetup` call (once)."""
    if not isinstance(vars(module).get("setup"), SeededSetup):
        module.setup = SeededSetup(module, data_seed)
