"""Test-set predictions of the tested checkpoint, saved for reports (reliability diagrams, per-class recall).

``<run dir>/predictions.npz`` holds ``targets`` and, for classification, ``probs`` ``[N, C]`` (the loss's own
probabilities, the ones the metrics use) and ``preds`` ``[N]``; for multi-label, ``probs`` ``[N, L]`` (each
label's probability) and ``preds`` ``[N, L]`` (0/1); for regression, the model's ``outputs`` ``[N, K·T]`` and
the point predictions ``point`` ``[N, T]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossbench.task import Task

FILENAME = "predictions.npz"


def _test_batches(dm: Any, device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
    """The whole test split as ``(x, y)`` batches on ``device``, inputs ready for the model.

    In-memory modules are sliced directly (with their batch-wise eval transform); any other data module
    goes through its ``test_dataloader()`` and its batch hooks, as Lightning would run them.
    """
    splits = getattr(dm, "splits", None)
    if isinstance(splits, dict) and "test" in splits:
        x, y = splits["test"]
        step = int(getattr(dm, "eval_batch_size", 1024))
        transform = getattr(dm, "eval_transform", None)  # e.g. uint8 images -> normalised floats
        for i in range(0, len(x), step):
            xb = x[i : i + step].to(device)
            yield (xb if transform is None else transform(xb, 0)), y[i : i + step]
        return
    for batch in dm.test_dataloader():
        batch = dm.on_before_batch_transfer(batch, 0)
        batch = dm.transfer_batch_to_device(batch, device, 0)
        batch = dm.on_after_batch_transfer(batch, 0)
        yield batch[0], batch[1]


@torch.no_grad()
def save_test_predictions(module, dm, path: Path, ckpt_path: str | None = None) -> Path:
    """Run ``module`` over ``dm``'s test split and save its outputs to ``path``.

    With ``ckpt_path`` the checkpoint's weights are loaded first (the tested ones: after ``ddp_spawn`` the
    main process's module holds the end-of-fit weights, not the tested checkpoint's).
    """
    if ckpt_path:
        state = torch.load(ckpt_path, map_location=module.device, weights_only=True)["state_dict"]
        module.load_state_dict(state)
    was_training = module.training
    module.eval()
    try:
        outputs, targets = [], []
        for x, y in _test_batches(dm, module.device):
            outputs.append(module(x).float())
            targets.append(y.cpu())
        out = torch.cat(outputs)
        arrays = {"targets": torch.cat(targets).numpy()}
        loss, task = module.loss, Task(dm.task)
        if task is Task.CLASSIFICATION:
            arrays["probs"] = loss.probabilities(out).cpu().numpy().astype(np.float32)
            arrays["preds"] = loss.predictions(out).cpu().numpy()
        elif task is Task.MULTILABEL:
            arrays["probs"] = loss.label_probabilities(out).cpu().numpy().astype(np.float32)
            arrays["preds"] = loss.label_predictions(out).cpu().numpy().astype(np.int8)
        else:
            arrays["outputs"] = out.cpu().numpy()
            arrays["point"] = loss.point_predictions(out).float().cpu().numpy()
    finally:
        module.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
