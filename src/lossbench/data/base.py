"""In-memory data modules: split once by ``data_seed``, held as tensors, batched by slicing."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from lossbench.data.loader import EpochSampler, TensorBatchLoader
from lossbench.errors import ConfigError, check_range
from lossbench.losses.base import Task


class InMemoryDataModule(L.LightningDataModule):
    """A data set small enough to hold in memory, split into train/val/test by ``data_seed``.

    Subclasses implement :meth:`load_arrays` and set :attr:`task`. Splits are stratified for
    classification and depend only on ``data_seed``, so every loss and every training ``seed`` sees the
    same split; the training order depends on ``seed`` (the run's seed) and the epoch. Features are
    standardised with statistics of the training split only.

    Args:
        batch_size: training batch size (per process).
        eval_batch_size: batch size for validation and test.
        val_fraction, test_fraction: shares of the whole data set held out.
        data_seed: seeds the split (and any data stressor), never the model.
        seed: seeds the training order.
        standardize: standardise features on the training split.
    """

    task: Task = Task.CLASSIFICATION

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        data_seed: int = 0,
        seed: int = 0,
        standardize: bool = True,
    ) -> None:
        super().__init__()
        self.batch_size = int(check_range("data.batch_size", batch_size, 1))
        self.eval_batch_size = int(check_range("data.eval_batch_size", eval_batch_size, 1))
        check_range("data.val_fraction", val_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_range("data.test_fraction", test_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no "
                "training data: make their sum < 1"
            )
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.data_seed, self.seed, self.standardize = data_seed, seed, standardize
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self._on_device: dict[str, tuple[Tensor, Tensor]] = {}

    # --- what subclasses provide --------------------------------------------------------------------
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return features ``X`` ``[N, ...]`` and targets ``y`` (class indices or values)."""
        raise NotImplementedError

    # --- shape information the model and loss need --------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"][0].shape[1:])

    @property
    def num_classes(self) -> int | None:
        return self._num_classes if self.task is Task.CLASSIFICATION else None

    @property
    def num_targets(self) -> int:
        return 1 if self.task is Task.CLASSIFICATION else self.splits["train"][1].shape[-1]

    @property
    def class_counts(self) -> Tensor | None:
        """Samples per class in the training split (classification only)."""
        if self.task is not Task.CLASSIFICATION:
            return None
        return torch.bincount(self.splits["train"][1], minlength=self._num_classes)

    # --- Lightning hooks ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = self.load_arrays()
        classification = self.task is Task.CLASSIFICATION
        stratify = y if classification else None
        idx = np.arange(len(y))
        rest, test = train_test_split(
            idx, test_size=self.test_fraction, stratify=stratify, random_state=self.data_seed
        )
        val_share = self.val_fraction / (1.0 - self.test_fraction)
        train, val = train_test_split(
            rest,
            test_size=val_share,
            stratify=None if stratify is None else y[rest],
            random_state=self.data_seed,
        )
        x = x.astype(np.float32)
        if self.standardize:
            flat = x.reshape(len(x), -1)
            scaler = StandardScaler().fit(flat[train])
            x = scaler.transform(flat).astype(np.float32).reshape(x.shape)
        if classification:
            y_t = torch.as_tensor(y, dtype=torch.long)
            self._num_classes = int(y_t.max()) + 1
        else:
            y_t = torch.as_tensor(y, dtype=torch.float32).reshape(len(y), -1)
        x_t = torch.from_numpy(np.ascontiguousarray(x))
        self.splits = {name: (x_t[i], y_t[i]) for name, i in (("train", train), ("val", val), ("test", test))}

    def _loader(self, split: str, train: bool) -> TensorBatchLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        if split not in self._on_device:
            device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
            self._on_device[split] = tuple(t.to(device) for t in self.splits[split])
        tensors = self._on_device[split]
        sampler = EpochSampler(
            len(tensors[0]), shuffle=train, seed=self.seed, rank=rank, world_size=world, pad=train
        )
        return TensorBatchLoader(tensors, self.batch_size if train else self.eval_batch_size, sampler)

    def train_dataloader(self) -> TensorBatchLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorBatchLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> TensorBatchLoader:
        return self._loader("test", train=False)

    def describe(self) -> dict[str, Any]:
        """Sizes and shapes, for logs and ``metrics.json``."""
        return {
            "task": self.task.value,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            **{f"n_{k}": len(v[1]) for k, v in self.splits.items()},
        }
