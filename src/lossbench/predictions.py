"""Test-set predictions of the tested checkpoint, saved for reports (reliability diagrams, per-class recall).

``<run dir>/predictions.npz`` holds ``targets`` and, for classification, ``probs`` ``[N, C]`` (the loss's own
probabilities, the ones the metrics use) and ``preds`` ``[N]``; for regression, ``outputs`` ``[N, T]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lossbench.losses.base import Task

FILENAME = "predictions.npz"


@torch.no_grad()
def save_test_predictions(module, dm, path: Path, ckpt_path: str | None = None) -> Path:
    """Run ``module`` over ``dm``'s test split and save its outputs to ``path``.

    With ``ckpt_path`` the checkpoint's weights are loaded first (the tested ones: after ``ddp_spawn`` the
    main process's module holds the end-of-fit weights, not the tested checkpoint's).
    """
    if ckpt_path:
        state = torch.load(ckpt_path, map_location=module.device, weights_only=True)["state_dict"]
        module.load_state_dict(state)
    x, y = dm.splits["test"]
    was_training = module.training
    module.eval()
    try:
        step = int(getattr(dm, "eval_batch_size", 1024))
        transform = getattr(dm, "eval_transform", None)  # e.g. uint8 images -> normalised floats
        batches = (x[i : i + step].to(module.device) for i in range(0, len(x), step))
        outputs = torch.cat([module(b if transform is None else transform(b, 0)).float() for b in batches])
        arrays = {"targets": y.cpu().numpy()}
        if Task(dm.task) is Task.CLASSIFICATION:
            arrays["probs"] = module.loss.probabilities(outputs).cpu().numpy().astype(np.float32)
            arrays["preds"] = module.loss.predictions(outputs).cpu().numpy()
        else:
            arrays["outputs"] = outputs.cpu().numpy()
    finally:
        module.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
