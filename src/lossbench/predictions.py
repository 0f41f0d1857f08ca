"""Test-set predictions of the tested checkpoint, saved for reports (reliability diagrams, per-class recall).

:class:`~lossbench.module.LossBenchModule` keeps each test batch's outputs in ``test_step`` when it is
given a ``predictions_path``, and at the end of the test epoch :func:`save_predictions` writes them:
``predictions.npz`` holds ``targets`` and, for classification, ``probs`` ``[N, C]`` (the loss's own
probabilities, the ones the metrics use) and ``preds`` ``[N]``; for multi-label, ``probs`` ``[N, L]`` (each
label's probability) and ``preds`` ``[N, L]`` (0/1); for regression, the model's ``outputs`` ``[N, K·T]``
and the point predictions ``point`` ``[N, T]`` (:meth:`lossbench.task.TaskSpec.prediction_arrays`).

Under DDP each process holds its shard of the test split (samples ``rank::world_size`` in order, as the
in-memory loaders shard evaluation); the shards are gathered and put back in the split's order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossbench.task import spec


def gather_shards(module: Any, values: Tensor) -> Tensor:
    """The ``rank::world_size`` shards of all processes, interleaved back into one tensor in order."""
    sizes = module.all_gather(torch.tensor(len(values), device=values.device)).reshape(-1)
    longest = int(sizes.max())
    padded = values.new_zeros((longest, *values.shape[1:]))
    padded[: len(values)] = values
    shards = module.all_gather(padded)  # [world, longest, ...]
    world = shards.shape[0]
    kept = (torch.arange(longest, device=sizes.device)[:, None] < sizes[None, :]).reshape(-1)
    return shards.transpose(0, 1).reshape(world * longest, *values.shape[1:])[kept.to(shards.device)]


def gathered(module: Any, batches: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """The kept ``(outputs, targets)`` batches of every process, concatenated in the split's order."""
    outputs = torch.cat([o for o, _ in batches])
    targets = torch.cat([t for _, t in batches])
    if module.trainer.world_size > 1:
        outputs, targets = gather_shards(module, outputs), gather_shards(module, targets)
    return outputs, targets


def save_predictions(module: Any, batches: list[tuple[Tensor, Tensor]], path: Path) -> Path | None:
    """Write the kept test ``(outputs, targets)`` batches to ``path`` (on the global rank 0 process)."""
    outputs, targets = gathered(module, batches)
    if not module.trainer.is_global_zero:
        return None
    arrays = {"targets": targets.cpu().numpy()}
    for name, value in spec(module.task).prediction_arrays(module.loss, outputs).items():
        arrays[name] = value.cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
