"""Packed training: K replicas of a small model (each one run of a sweep: a loss and a seed) trained
together in one process, each exactly as its own run would train.

- :mod:`~lossbench.packed.packable`: which runs can be packed together, and why not;
- :mod:`~lossbench.packed.replicas`: each replica built as its run builds it (weights, dropout stream);
- :mod:`~lossbench.packed.stacking`: :class:`PackedModel`, the replicas' tensors stacked, each replica's
  a view of its slice; :mod:`~lossbench.packed.models` picks the packed model of each model family:
  :mod:`~lossbench.packed.mlp` (batched matrix products), :mod:`~lossbench.packed.cnn` and
  :mod:`~lossbench.packed.resnet` (grouped convolutions, batch norm per replica:
  :mod:`~lossbench.packed.convnet`);
- :mod:`~lossbench.packed.batches`: each replica's own training batches and augmentation;
- :mod:`~lossbench.packed.optim`: one optimizer and schedule per replica, stepped as one;
- :mod:`~lossbench.packed.metrics` and :mod:`~lossbench.packed.selection`: each replica's metrics and best
  epoch, as its run computes and chooses them;
- :mod:`~lossbench.packed.module`: :class:`PackedModule`, the LightningModule training them, with each
  replica's NaN/Inf guard (:mod:`~lossbench.packed.guard`);
- :mod:`~lossbench.packed.fit`: :func:`fit_packed`, configs in, each run's outcome
  (:mod:`~lossbench.packed.results`) out;
- :mod:`~lossbench.packed.launcher` (``hydra/launcher=packed``), :mod:`~lossbench.packed.continuation`,
  :mod:`~lossbench.packed.run_files`, :mod:`~lossbench.packed.history`,
  :mod:`~lossbench.packed.checkpoints` (:mod:`~lossbench.packed.checkpoint_io`),
  :mod:`~lossbench.packed.wandb_runs`: a sweep's jobs grouped, trained and each written as its own run;
  :mod:`~lossbench.packed.memory`: the default ``max_pack``.

References: Laurent et al., "Packed-Ensembles for Efficient Uncertainty Estimation", ICLR 2023; PyTorch's
model ensembling with ``torch.func.stack_module_state`` and ``vmap``.
"""

from lossbench.packed.batches import PackedDataModule, PackedTrainLoader
from lossbench.packed.fit import build_packed, fit_packed, train_packed
from lossbench.packed.mlp import PackedMLP
from lossbench.packed.models import packed_model
from lossbench.packed.module import FAILED, OK, PackedModule
from lossbench.packed.packable import packing_problems
from lossbench.packed.replicas import Replica, build_replicas
from lossbench.packed.stacking import PackedModel

__all__ = [
    "FAILED",
    "OK",
    "PackedDataModule",
    "PackedMLP",
    "PackedModel",
    "PackedModule",
    "PackedTrainLoader",
    "Replica",
    "build_packed",
    "build_replicas",
    "fit_packed",
    "packed_model",
    "packing_problems",
    "train_packed",
]
