"""Packed training: K replicas of a small model (each one run of a sweep: a loss and a seed) trained
together in one process, each exactly as its own run would train.

- :mod:`~lossbench.packed.replicas`: each replica built as its run builds it (weights, dropout stream);
- :mod:`~lossbench.packed.mlp`: :class:`PackedMLP`, K MLPs as one model of batched matrix products;
- :mod:`~lossbench.packed.batches`: each replica's own training batches;
- :mod:`~lossbench.packed.optim`: one optimizer and schedule per replica, stepped as one;
- :mod:`~lossbench.packed.metrics` and :mod:`~lossbench.packed.selection`: each replica's metrics and best
  epoch, as its run computes and chooses them;
- :mod:`~lossbench.packed.module`: :class:`PackedModule`, the LightningModule training them;
- :mod:`~lossbench.packed.fit`: :func:`fit_packed`, configs in, each run's outcome out.

References: Laurent et al., "Packed-Ensembles for Efficient Uncertainty Estimation", ICLR 2023; PyTorch's
model ensembling with ``torch.func.stack_module_state`` and ``vmap``.
"""

from lossbench.packed.batches import PackedDataModule, PackedTrainLoader
from lossbench.packed.fit import build_packed, fit_packed, train_packed
from lossbench.packed.mlp import PackedMLP
from lossbench.packed.module import FAILED, OK, PackedModule
from lossbench.packed.replicas import Replica, build_replicas, packing_problems

__all__ = [
    "FAILED",
    "OK",
    "PackedDataModule",
    "PackedMLP",
    "PackedModule",
    "PackedTrainLoader",
    "Replica",
    "build_packed",
    "build_replicas",
    "fit_packed",
    "packing_problems",
    "train_packed",
]
