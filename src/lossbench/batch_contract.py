"""The batches of a user's DataModule, checked against what the module declares.

:func:`lossbench.task.check_data_contract` checks the attributes a DataModule declares (task, classes,
input shape); the batches must agree with them, or the first step fails inside the loss with a shape or
dtype error that names neither the DataModule nor the fix. :func:`check_first_batch` draws one training
batch before training and names what disagrees; :class:`BatchContract` checks every training, validation and
test batch as it comes (a class index out of range there would fail in the metrics, with an index error or
a GPU's device-side assert, after the training). lossbench's own data modules build their batches from the
same arrays they declare, so only modules from elsewhere are checked.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from lossbench.errors import ConfigError, DataError
from lossbench.task import Task


def is_external(obj: Any) -> bool:
    """A data module, loss or model from outside lossbench (whose batches or first step are checked)."""
    return obj is not None and type(obj).__module__.split(".")[0] != "lossbench"


def batch_problems(batch: Any, task: Task, num_classes: Any, num_targets: Any, input_shape: Any) -> list[str]:
    """What of one ``(x, y)`` training batch disagrees with the declared task, one phrase each (the
    shapes of ``docs/extending.md``: class indices ``[B]``, 0/1 labels ``[B, L]``, floats ``[B, T]``)."""
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        return [f"a batch (x, y), got {type(batch).__name__}"]
    x, y = batch[0], batch[1]
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        return [f"tensors x and y, got {type(x).__name__} and {type(y).__name__}"]
    problems = []
    if tuple(x.shape[1:]) != tuple(input_shape):
        problems.append(
            f"x of shape [B, {', '.join(map(str, input_shape))}] (input_shape), got {list(x.shape)}"
        )
    if len(y) != len(x):
        problems.append(f"as many targets as inputs, got {len(y)} and {len(x)}")
    if task is Task.CLASSIFICATION:
        if y.is_floating_point() or y.dtype == torch.bool or y.ndim != 1:
            problems.append(f"y: class indices [B] of an integer dtype, got {y.dtype} {list(y.shape)}")
        elif num_classes is not None and len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            problems.append(f"y: class indices in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    elif task is Task.MULTILABEL:
        if y.ndim != 2 or (num_classes is not None and y.shape[1] != num_classes):
            problems.append(f"y: 0/1 labels [B, {num_classes}], got {list(y.shape)}")
        elif len(y) and not bool(((y == 0) | (y == 1)).all()):
            problems.append(f"y: 0/1 labels, got values such as {y[(y != 0) & (y != 1)][0].item()}")
    elif not y.is_floating_point() or not (
        (y.ndim == 2 and y.shape[1] == num_targets) or (y.ndim == 1 and num_targets == 1)
    ):
        problems.append(f"y: float targets [B, {num_targets}], got {y.dtype} {list(y.shape)}")
    return problems


def check_first_batch(dm: Any, name: str, precision: Any = "32-true") -> None:
    """Raise a :class:`ConfigError` naming what the first training batch of ``dm`` (a DataModule from
    outside lossbench, set up for fitting) gets wrong; the batch is drawn from ``train_dataloader()``.
    Under a ``precision`` other than 64-bit, float64 inputs (NumPy's default) would meet float32 weights."""
    if not is_external(dm):
        return
    import random

    import numpy as np

    # a shuffling loader draws from the global generators: the run's draws stay as they were (CPU ones
    # only: reading a CUDA generator would initialise CUDA in this process, which a forked DDP cannot take)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            batch = next(iter(dm.train_dataloader()), None)
    except Exception:  # noqa: BLE001 - e.g. a loader that needs its Trainer: fit will say what fails
        return
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    if batch is None:
        raise ConfigError(f"{name}: train_dataloader() gives no batch: the training split is empty")
    task = Task(dm.task)
    declared = getattr(dm, "num_classes", None), getattr(dm, "num_targets", None), tuple(dm.input_shape)
    problems = batch_problems(batch, task, *declared)
    x = batch[0] if isinstance(batch, list | tuple) and batch else None
    if isinstance(x, torch.Tensor) and x.dtype == torch.float64 and not str(precision).startswith("64"):
        problems.append(
            f"x as float32 to train in trainer.precision={precision}, got float64 (NumPy's default): give "
            "x.float(), or train in float64 with trainer.precision=64-true"
        )
    if problems:
        where = f"{name} ({type(dm).__module__}.{type(dm).__qualname__})"
        raise ConfigError(
            f"{where} declares task={task.value}, but its first training batch does not fit it: it needs "
            f"{'; '.join(problems)}. See lossbench.task.BenchDataModule"
        )


class BatchContract(Callback):
    """Each training, validation and test batch of a DataModule from outside lossbench agrees with what it
    declares (:func:`batch_problems`), or the run stops at that batch with a ``DataError`` naming the
    split, the batch and what disagrees. For such modules only: a classification batch costs one read of
    its labels' range (a device sync on a GPU)."""

    def __init__(self) -> None:
        self.declared: tuple[Task, Any, Any, tuple[int, ...]] | None = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        dm = trainer.datamodule
        self.declared = None
        if is_external(dm):
            declared = getattr(dm, "num_classes", None), getattr(dm, "num_targets", None)
            self.declared = (Task(dm.task), *declared, tuple(dm.input_shape))

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.check(trainer, "training", batch, batch_idx)

    def on_validation_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.check(trainer, "validation", batch, batch_idx)

    def on_test_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.check(trainer, "test", batch, batch_idx)

    def check(self, trainer: Any, split: str, batch: Any, batch_idx: int) -> None:
        problems = batch_problems(batch, *self.declared) if self.declared is not None else []
        if problems:
            dm = trainer.datamodule
            raise DataError(
                f"{type(dm).__module__}.{type(dm).__qualname__} declares task={self.declared[0].value}, but "
                f"batch {batch_idx} of its {split} split does not fit it: it needs {'; '.join(problems)}. "
                "See lossbench.task.BenchDataModule"
            )
