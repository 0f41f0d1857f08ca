"""A folder of images, one sub-folder per class (torchvision ``ImageFolder``), decoded batch by batch.

Images stay on disk and are decoded, resized and normalised in the ``DataLoader`` workers
(``data.num_workers``). The train/val/test split is a stratified split of the folder fixed by
``data_seed`` (or ``data.test_root`` is the test split); the stressors change the training split only,
as for the in-memory data sets (:class:`~lossbench.data.base.InMemoryDataModule`).

Batches are formed in the main process by :class:`~lossbench.data.loader.FolderBatchSampler` (so
Lightning does not wrap it): training under DDP cuts each epoch's order into global batches and gives
each rank its share with the loss scale of :class:`~lossbench.data.loader.TensorBatchLoader`.
Augmentation draws from a generator seeded by ``(seed, epoch, sample)``, so the number of workers does
not change a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from lossbench.data.image_batches import FolderBatches, keep_batch, load_image
from lossbench.data.image_files import (
    VisibleImageFolder,
    check_distinct,
    check_images,
    check_not_splits,
    check_same_class_folders,
    check_separate,
    same_name,
    unused_images,
)
from lossbench.data.loader import FolderBatchSampler, check_eval_shares
from lossbench.data.splits import Split
from lossbench.data.stressing import Stressors
from lossbench.errors import ConfigError, DataError, check_choice, check_range
from lossbench.task import Task

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _size(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ConfigError(f"{name}={value!r} is not valid: give a positive int or [height, width]")
    return size  # type: ignore[return-value]


class ImageFolderDataModule(L.LightningDataModule):
    """Images in ``root/<class>/<file>`` (classes in sorted folder order), classification.

    Args:
        root: the folder of class sub-folders.
        test_root: a folder with the same class sub-folders, the test split; ``None``: a stratified
            ``test_fraction`` of ``root``.
        image_size: ``(H, W)`` (or one int) of the model input.
        resize: ``None``: resize every image to ``image_size``; an int: resize the shorter side to it, then
            center-crop ``image_size``.
        channels: 3 (RGB) or 1 (grayscale).
        mean, std: per-channel normalisation; ``None``: ImageNet statistics (their average for grayscale).
        augment: training images: zero-pad by ``augment_padding``, random crop back, random h-flip.
        check_files: open every file's header in setup (a corrupt file fails there, naming it);
            ``"full"``: decode every file (a file cut short behind an intact header fails there too).
        batch_size, eval_batch_size, val_fraction, test_fraction, data_seed, seed, imbalance_factor,
            label_noise, noise_type, outlier_fraction: as for
            :class:`~lossbench.data.base.InMemoryDataModule`.
        num_workers: ``DataLoader`` worker processes that decode the images.
    """

    task = Task.CLASSIFICATION
    num_targets = 1

    def __init__(
        self,
        root: str,
        test_root: str | None = None,
        image_size: int | Sequence[int] = 32,
        resize: int | None = None,
        channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augment: bool = False,
        augment_padding: int = 4,
        check_files: bool | str = True,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        num_workers: int = 0,
        imbalance_factor: float = 1.0,
        label_noise: float = 0.0,
        noise_type: str = "symmetric",
        outlier_fraction: float = 0.0,
        data_seed: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.tested = True  #: whether the run reads the test split (``test``), set by ``build_data``
        self.root, self.test_root = Path(str(root)), None if test_root is None else Path(str(test_root))
        self.image_size = _size("data.image_size", image_size)
        self.resize = None if resize is None else int(check_range("data.resize", resize, 1))
        if self.resize is not None and self.resize < max(self.image_size):  # the crop would pad with black
            raise ConfigError(
                f"data.resize={self.resize} is smaller than data.image_size={list(self.image_size)}: the "
                f"center crop would pad the images with black; set data.resize >= {max(self.image_size)} "
                "(or null)"
            )
        self.channels = int(check_choice("data.channels", str(channels), ("1", "3")))
        gray = self.channels == 1  # ImageNet statistics by default, their channel average for grayscale
        mean = tuple(mean or ((sum(IMAGENET_MEAN) / 3,) if gray else IMAGENET_MEAN))
        std = tuple(std or ((sum(IMAGENET_STD) / 3,) if gray else IMAGENET_STD))
        if len(mean) != self.channels or len(std) != self.channels or min(std) <= 0:
            raise ConfigError(
                f"data.mean={list(mean)} / data.std={list(std)} need {self.channels} value(s) (std > 0), one "
                f"per channel of data.channels={self.channels}"
            )
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.augment_padding = (
            int(check_range("data.augment_padding", augment_padding, 0)) if augment else None
        )
        if isinstance(check_files, str) and check_files != "full":
            raise ConfigError(
                f"data.check_files={check_files!r} is not valid: choose true (every file's header), full "
                "(decode every image) or false"
            )
        self.check_files = check_files
        self.batch_size = int(check_range("data.batch_size", batch_size, 1))
        self.eval_batch_size = int(check_range("data.eval_batch_size", eval_batch_size, 1))
        self.split = Split(val_fraction, test_fraction, int(data_seed), separate_test=test_root is not None)
        self.stressors = Stressors(
            imbalance_factor, label_noise, noise_type, outlier_fraction, data_seed=int(data_seed)
        )
        self.num_workers = int(check_range("data.num_workers", num_workers, 0))
        self.data_seed, self.seed = int(data_seed), int(seed)
        self.input_shape = (self.channels, *self.image_size)
        #: split name -> (indices into its folder, labels as trained/evaluated on)
        self.split_index: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.stress_info: dict[str, Any] = {}
        self.labels: list[str] = []

    # --- the folders ----------------------------------------------------------------------------------
    def _folder(self, key: str, root: Path) -> ImageFolder:
        if not root.is_dir():
            raise DataError(
                f"data.{key}={root} does not exist or is not a folder: point it at a folder with one "
                "sub-folder of images per class (<root>/<class>/<image>)"
            )
        loader = partial(load_image, mode="RGB" if self.channels == 3 else "L")
        try:
            folder = VisibleImageFolder(str(root), loader=loader, allow_empty=True)
        except FileNotFoundError:
            raise DataError(
                f"data.{key}={root} has no class sub-folders: put the images in one sub-folder per class "
                "(<root>/<class>/<image>)"
            ) from None
        if key == "root" and len(folder.classes) < 2:
            raise DataError(
                f"data.root={root} has {len(folder.classes)} class ({', '.join(folder.classes)}): a model "
                "needs at least 2 classes, so put each class in its own sub-folder (<root>/<class>/<image>)"
            )
        check_not_splits(key, root, folder)  # before the empty folders: a split root's other folders
        counts = np.bincount(folder.targets, minlength=len(folder.classes))
        if (counts == 0).any():
            empty = ", ".join(str(root / folder.classes[i]) for i in np.flatnonzero(counts == 0))
            raise DataError(
                f"data.{key}: class folder(s) {empty} hold no images ({', '.join(IMG_EXTENSIONS)}): add "
                "images or remove the folder(s)"
            )
        if rank_zero_only.rank == 0:  # once, not once per DDP process
            unused_images(key, root, folder)
        paths = [path for path, _ in folder.samples]
        check_distinct(key, paths)
        if self.check_files:
            check_images(key, paths, decode=self.check_files == "full")
        return folder

    def _stress(self, train: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stressors on the training split: returns (kept train indices, their observed labels)."""
        name = f"data.root={self.root}"
        train, y_train, self.stress_info, clean = self.stressors.apply(
            self.task, self.num_classes, train, y, name
        )
        if clean is not None:
            self.clean_train_targets = torch.as_tensor(clean, dtype=torch.long)
        return train, y_train

    # --- Lightning hooks ------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Nothing to download; the folders are checked in :meth:`setup`."""

    def setup(self, stage: str | None = None) -> None:
        if self.split_index:
            return
        folder = self._folder("root", self.root)
        self.labels, self.num_classes = list(folder.classes), len(folder.classes)
        y = np.asarray(folder.targets, dtype=np.int64)
        self.folders = {"train": folder, "val": folder, "test": folder}
        if self.test_root is not None:
            test_folder = self._folder("test_root", self.test_root)
            check_same_class_folders(self.labels, test_folder.classes, self.test_root)
            check_separate(folder, test_folder)
            self.folders["test"] = test_folder
        train, val, test = self.split.indices(
            y,
            stratify=True,
            fixed_test=None if self.test_root is None else np.array([], dtype=np.int64),
            class_names=self.labels,
            where=f"data.root={self.root}",
        )
        train, y_train = self._stress(train, y)
        if self.test_root is not None:  # its class indices as data.root's (by normalised name)
            test = np.arange(len(self.folders["test"].targets))
            classes = self.folders["test"].classes
            index = [next(i for i, c in enumerate(self.labels) if same_name(c, t)) for t in classes]
            y_test = np.asarray(index, dtype=np.int64)[
                np.asarray(self.folders["test"].targets, dtype=np.int64)
            ]
        else:
            y_test = y[test]
        self.split_index = {"train": (train, y_train), "val": (val, y[val]), "test": (test, y_test)}
        self.class_counts = torch.bincount(torch.as_tensor(y_train), minlength=self.num_classes)
        shape = tuple(self.dataset("val").image(0).shape)
        if shape != self.input_shape:
            raise DataError(f"data: images decode to shape {shape}, expected {self.input_shape}")

    def dataset(self, split: str) -> FolderBatches:
        """The split as a dataset of batches; its :meth:`FolderBatches.image` gives one sample."""
        geometry: list[v2.Transform] = [v2.ToImage()]
        if self.resize is None:
            geometry.append(v2.Resize(list(self.image_size), antialias=True))
        else:
            geometry += [v2.Resize(self.resize, antialias=True), v2.CenterCrop(list(self.image_size))]
        finish = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)])
        indices, labels = self.split_index[split]
        padding = self.augment_padding if split == "train" else None
        return FolderBatches(
            self.folders[split], indices, labels, v2.Compose(geometry), finish, padding, self.seed
        )

    def _loader(self, split: str) -> DataLoader:
        train = split == "train"
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sizes = {name: len(index[0]) for name, index in self.split_index.items()}
        check_eval_shares(sizes, self.tested, world, f"data.root={self.root}")
        size = len(self.split_index[split][0])
        batch_size = self.batch_size if train else self.eval_batch_size
        return DataLoader(
            self.dataset(split),
            batch_size=None,  # the sampler yields whole batches
            sampler=FolderBatchSampler(size, batch_size, train, self.seed, rank, world),
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
            pin_memory=trainer is not None and trainer.strategy.root_device.type == "cuda",
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes, class names and stressors, for logs and ``metrics.json``."""
        return {
            "task": self.task.value,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            **{f"n_{k}": len(v[0]) for k, v in self.split_index.items()},
            **self.stress_info,
            "class_counts": self.class_counts.tolist(),
            "labels": self.labels,
            "root": str(self.root),
            "test_root": None if self.test_root is None else str(self.test_root),
        }
