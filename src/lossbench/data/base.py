"""In-memory data modules: split once by ``data_seed``, stressed on the training split, batched by slicing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from sklearn.preprocessing import StandardScaler
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lossbench.data.loader import EpochSampler, TensorBatchLoader, TorchEpochSampler, check_eval_shares
from lossbench.data.splits import Split, warn_of_labels_never_positive
from lossbench.data.stressing import Stressors
from lossbench.data.targets import checked_targets
from lossbench.errors import DataError, check_choice, check_range
from lossbench.task import Task

LOADERS = ("tensor", "torch")

log = logging.getLogger(__name__)

#: a batch-wise transform of the inputs, run on the training device: ``transform(x, epoch) -> x``
BatchTransform = Callable[[Tensor, int], Tensor]


class InMemoryDataModule(L.LightningDataModule):
    """A data set small enough to hold in memory, split into train/val/test by ``data_seed``.

    Subclasses implement :meth:`load_arrays` and set :attr:`task`; they may set :attr:`fixed_test` (indices
    of an official test set), override :meth:`preprocess` (e.g. keep images as ``uint8``) and set
    :attr:`train_transform` / :attr:`eval_transform` (batched, on the device). Splits are stratified for
    classification and depend only on ``data_seed``, so every loss and every training ``seed`` sees the
    same split; the training order depends on ``seed`` and the epoch. Features are standardised with
    statistics of the training split only.

    Stressors (:mod:`lossbench.data.stressors`) change the *training split only*, after the split and
    seeded by ``data_seed``: long-tailed subsampling, then label noise (classification), outliers
    (regression), or per-label imbalance and missing positives (multi-label). Validation and test stay
    clean, with the data set's original class distribution — for
    a balanced data set that is a balanced, clean validation set, so model selection measures what the
    test measures (the long-tail papers select on the balanced test set; we hold out a clean val instead).
    :attr:`class_counts` counts the *observed* (possibly noisy) training labels, which is what a
    class-balanced loss can know.

    Args:
        batch_size: training batch size (per process).
        eval_batch_size: batch size for validation and test.
        val_fraction, test_fraction: shares of the whole data set held out (``test_fraction`` is unused
            when the data set has an official test split).
        data_seed: seeds the data, the split and every stressor, never the model.
        seed: seeds the training order (and on-device augmentation).
        standardize: standardise features on the training split.
        standardize_targets: regression: standardise targets with the mean and standard deviation of the
            clean training targets (before any outliers are added), so scale parameters such as Huber's
            ``δ`` and the metrics MAE/RMSE are in units of that standard deviation (R² is unaffected).
        num_classes: declared number of classes (labels must lie in ``[0, num_classes)``); ``None``:
            ``max(label) + 1``.
        imbalance_factor: ``n_max / n_min`` of the long-tailed training profile; 1: unchanged.
        label_noise: share of training labels corrupted, in ``[0, 1)``.
        noise_type: ``symmetric`` or ``asymmetric`` (``c → c+1 mod C``).
        outlier_fraction: share of training targets contaminated (regression), in ``[0, 1)``.
        missing_positives: share of each label's training positives set to 0 (multi-label), in ``[0, 1)``.
        outlier_scale: outlier shift in standard deviations of the training targets.
        loader: ``tensor`` (tensors on the device, batched by slicing) or ``torch`` (a ``DataLoader``
            over a ``TensorDataset`` on the CPU, for data that does not fit on the device).
        num_workers: ``DataLoader`` workers (``loader=torch`` only).
    """

    task: Task = Task.CLASSIFICATION
    #: indices (into the arrays of :meth:`load_arrays`) of an official test set, or ``None``
    fixed_test: np.ndarray | None = None
    #: whether the test split is always an official one (``fixed_test``): ``test_fraction`` takes nothing
    official_test: bool = False
    train_transform: BatchTransform | None = None
    eval_transform: BatchTransform | None = None

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        data_seed: int = 0,
        seed: int = 0,
        standardize: bool = True,
        standardize_targets: bool = True,
        num_classes: int | None = None,
        imbalance_factor: float = 1.0,
        label_noise: float = 0.0,
        noise_type: str = "symmetric",
        outlier_fraction: float = 0.0,
        outlier_scale: float = 10.0,
        missing_positives: float = 0.0,
        loader: str = "tensor",
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = int(check_range("data.batch_size", batch_size, 1))
        self.eval_batch_size = int(check_range("data.eval_batch_size", eval_batch_size, 1))
        self.split = Split(val_fraction, test_fraction, data_seed, separate_test=self.official_test)
        self.stressors = Stressors(
            imbalance_factor,
            label_noise,
            noise_type,
            outlier_fraction,
            outlier_scale,
            missing_positives,
            data_seed,
        )
        self.data_seed, self.seed, self.standardize = data_seed, seed, standardize
        self.standardize_targets = standardize_targets
        self.target_mean: np.ndarray | None = None
        self.target_std: np.ndarray | None = None
        #: the ``data_info`` of the run whose model is tested here (``lossbench-eval``): its target units
        #: (and a table's encoding) are used instead of fitting them on this data's training rows
        self.fitted: dict[str, Any] = {}
        self.tested = True  #: whether the run reads the test split (``test``), set by ``build_data``
        if num_classes is not None:
            check_range("data.num_classes", num_classes, 1)
        self.declared_num_classes = num_classes
        self.loader = check_choice("data.loader", loader, LOADERS)
        self.num_workers = int(check_range("data.num_workers", num_workers, 0))
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.stress_info: dict[str, Any] = {}
        self._on_device: dict[str, tuple[Tensor, Tensor]] = {}

    # --- what subclasses provide --------------------------------------------------------------------
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return features ``X`` ``[N, ...]`` and targets ``y`` (class indices or values)."""
        raise NotImplementedError

    def preprocess(self, x: np.ndarray, train: np.ndarray) -> np.ndarray:
        """Features as stored in memory: ``float32``, standardised on the training rows ``train``."""
        x = x.astype(np.float32)
        if self.standardize:
            flat = x.reshape(len(x), -1)
            scaler = StandardScaler().fit(flat[train])
            x = scaler.transform(flat).astype(np.float32).reshape(x.shape)
        return x

    @property
    def display_name(self) -> str:
        """The data set's name in messages: for lossbench's own modules the ``data=`` option chosen (one
        module serves several, ``regression_outliers`` and ``heteroscedastic``), else its ``name``."""
        from lossbench.config import chosen

        name = str(getattr(self, "name", type(self).__name__))
        return chosen("data", name) if type(self).__module__.startswith("lossbench.") else name

    # --- shape information the model and loss need --------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"][0].shape[1:])

    @property
    def num_classes(self) -> int | None:
        """Classes (classification) or labels (multi-label); ``None`` for regression."""
        return None if self.task is Task.REGRESSION else self._num_classes

    @property
    def num_targets(self) -> int:
        return 1 if self.task is Task.CLASSIFICATION else self.splits["train"][1].shape[-1]

    @property
    def class_counts(self) -> Tensor | None:
        """Samples per (observed) class, or positives per label, in the training split after the stressors;
        ``None`` for regression."""
        if self.task is Task.MULTILABEL:
            return self.splits["train"][1].sum(dim=0).long()
        if self.task is not Task.CLASSIFICATION:
            return None
        return torch.bincount(self.splits["train"][1], minlength=self._num_classes)

    # --- building the splits ------------------------------------------------------------------------
    def split_indices(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Train/val/test indices, stratified for classification, fixed by ``data_seed``."""
        return self.split.indices(
            y,
            stratify=self.task is Task.CLASSIFICATION,
            fixed_test=self.fixed_test,
            class_names=getattr(self, "label_names", None),
            where=f"data {self.display_name}",
        )

    def _stress(self, train: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the stressors to the training split: returns (kept train indices, their targets)."""
        num_classes = self._num_classes if self.task is Task.CLASSIFICATION else None
        train, y_train, self.stress_info, clean = self.stressors.apply(
            self.task, num_classes, train, y, self.display_name
        )
        if clean is not None:
            self.clean_train_targets = torch.as_tensor(clean, dtype=torch.long)
        return train, y_train

    # --- Lightning hooks ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = self.load_arrays()
        if len(x) != len(y):
            raise DataError(f"data {self.display_name}: {len(x)} samples but {len(y)} targets")
        classification = self.task is Task.CLASSIFICATION
        y, self._num_classes = checked_targets(
            self.task, y, f"data {self.display_name}", self.declared_num_classes
        )
        train, val, test = self.split_indices(y)
        if self.task is Task.REGRESSION and self.standardize_targets:  # in float64: y may be 1e8 + small
            self.target_mean, std = y[train].mean(axis=0), y[train].std(axis=0)
            self.target_std = np.where(std > 0, std, 1.0)
            if "target_mean" in self.fitted:  # the tested model's units
                self.target_mean = np.asarray(self.fitted["target_mean"])
                self.target_std = np.asarray(self.fitted["target_std"])
            y = (y - self.target_mean) / self.target_std
        if self.task is Task.REGRESSION:
            y = y.astype(np.float32)
        train, y_train = self._stress(train, y)
        x = self.preprocess(x, train)
        dtype = torch.long if classification else torch.float32
        x_t = torch.from_numpy(np.ascontiguousarray(x))
        targets = {"train": y_train, "val": y[val], "test": y[test]}
        self.splits = {
            name: (x_t[torch.as_tensor(i)], torch.as_tensor(np.ascontiguousarray(targets[name]), dtype=dtype))
            for name, i in (("train", train), ("val", val), ("test", test))
        }
        if self.task is Task.MULTILABEL and rank_zero_only.rank == 0:  # once, not once per DDP process
            names = getattr(self, "label_names", None)
            warn_of_labels_never_positive(self.class_counts, names, self.display_name)

    def _loader(self, split: str, train: bool) -> TensorBatchLoader | DataLoader:
        batch_size = self.batch_size if train else self.eval_batch_size
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sizes = {k: len(v[1]) for k, v in self.splits.items()}
        check_eval_shares(sizes, self.tested, world, f"data {self.display_name}")
        # trainer.overfit_batches: the same first batches every epoch (Lightning turns a DataLoader's
        # shuffling off for it, which it cannot do for the tensor loader)
        overfit = train and trainer is not None and bool(getattr(trainer, "overfit_batches", 0))
        sampler = EpochSampler(len(self.splits[split][1]), shuffle=train and not overfit, seed=self.seed)
        transform = self.train_transform if train else self.eval_transform
        if train and hasattr(transform, "rank"):  # per-rank augmentation streams under DDP (both paths)
            transform.rank = rank
        if self.loader == "torch":
            workers = self.num_workers
            return DataLoader(
                TensorDataset(*self.splits[split]),
                batch_size=batch_size,
                sampler=TorchEpochSampler(sampler, rank=rank, world_size=world, pad=train),
                num_workers=workers,
                persistent_workers=workers > 0,
                # its own generator: iterating must not draw from the global RNG (dropout etc.), so both
                # loader paths train identically
                generator=torch.Generator().manual_seed(self.seed),
                pin_memory=self.trainer is not None and self.trainer.strategy.root_device.type == "cuda",
            )
        if split not in self._on_device:
            device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
            self._on_device[split] = tuple(t.to(device) for t in self.splits[split])
        return TensorBatchLoader(
            self._on_device[split],
            batch_size,
            sampler,
            train=train,
            rank=rank,
            world_size=world,
            transform=transform,
        )

    def train_dataloader(self) -> TensorBatchLoader | DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorBatchLoader | DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> TensorBatchLoader | DataLoader:
        return self._loader("test", train=False)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Tensor-loader batches are already on the device: skip Lightning's per-step walk over the batch."""
        if self.loader == "tensor" and batch[0].device == device:
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``loader=torch``: the tensor path's batch-wise transforms, once the batch is on the device."""
        if self.loader != "torch" or self.trainer is None:
            return batch
        transform = self.train_transform if self.trainer.training else self.eval_transform
        if transform is None:
            return batch
        x, *rest = batch
        return [transform(x, self.trainer.current_epoch), *rest]

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes and stressors, for logs and ``metrics.json``."""
        info: dict[str, Any] = {
            "task": self.task.value,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            **{f"n_{k}": len(v[1]) for k, v in self.splits.items()},
            **self.stress_info,
        }
        if self.task is not Task.REGRESSION:
            info["class_counts"] = self.class_counts.tolist()
        elif self.target_mean is not None:  # targets and predictions are in these units: y = mean + std * z
            info["target_mean"] = [float(m) for m in np.atleast_1d(self.target_mean)]
            info["target_std"] = [float(s) for s in np.atleast_1d(self.target_std)]
        return info
