"""Each replica's own training batches, gathered together from the in-memory training split.

An unpacked run on an in-memory data set (:class:`~lossbench.data.base.InMemoryDataModule`) trains on the
batches of :class:`~lossbench.data.loader.TensorBatchLoader`: epoch ``e`` visits the training split in the
order :class:`~lossbench.data.loader.EpochSampler` draws for ``(seed, e)``, cut into batches of
``batch_size``. :class:`PackedTrainLoader` draws every replica's order the same way and gathers batch ``i``
of all K orders with one index, ``x[indices]`` with ``indices`` of shape ``[K, B]``, so replica ``k``
sees exactly the batches its run would see. A training transform (image data's normalisation and
augmentation, :mod:`lossbench.data.transforms`) is each replica's own: the transform its run builds for
its ``data.seed`` (``transform.for_seed``), applied to its ``x[k]`` with the epoch, so its crops and flips
are its run's. Validation and test batches are the same for every replica:
they are given once and each replica evaluates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

from lossbench.data.base import InMemoryDataModule
from lossbench.data.loader import EpochSampler, TensorBatchLoader
from lossbench.data.transforms import Normalize, PadCropFlip
from lossbench.errors import ConfigError

#: the training transforms packed replicas reproduce: each one's ``for_seed(seed)`` is its run's transform
REPRODUCIBLE_TRANSFORMS = (Normalize, PadCropFlip)
Transform = Callable[[Tensor, int], Tensor]


def replica_transforms(
    transform: Transform | None, seeds: Sequence[int], data: str
) -> list[Transform] | None:
    """Each replica's training transform: ``transform`` as its run builds it for its ``seed``; None for
    none. ``ConfigError`` for a transform packed training cannot reproduce per replica."""
    if transform is None:
        return None
    if type(transform) not in REPRODUCIBLE_TRANSFORMS:
        names = ", ".join(cls.__name__ for cls in REPRODUCIBLE_TRANSFORMS)
        raise ConfigError(
            f"data {data} transforms its training batches with {type(transform).__name__}, which packed "
            f"replicas cannot each reproduce as their runs draw it (packed: {names}); train it unpacked"
        )
    return [transform.for_seed(seed) for seed in seeds]


class PackedSampler:
    """The K replicas' :class:`~lossbench.data.loader.EpochSampler`; Lightning calls :meth:`set_epoch`."""

    def __init__(self, size: int, seeds: Sequence[int]) -> None:
        self.samplers = [EpochSampler(size, shuffle=True, seed=seed) for seed in seeds]
        self.size = size

    def set_epoch(self, epoch: int) -> None:
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.samplers[0].epoch

    def __len__(self) -> int:
        return self.size

    def orders(self) -> Tensor:
        """This epoch's index orders, ``[K, size]``."""
        return torch.stack([sampler.indices() for sampler in self.samplers])


class PackedTrainLoader:
    """Training batches ``(x [K, B, ...], y [K, B])``: batch ``i`` of each replica's own epoch order.

    Args:
        tensors: the training inputs and targets, on the training device.
        batch_size: samples per batch (every replica's run has the same).
        seeds: the replicas' seeds (their runs' ``seed``, which orders their batches).
        transforms: per replica, its training transform ``transform(x, epoch)`` (None: no transform).
    """

    def __init__(
        self,
        tensors: tuple[Tensor, Tensor],
        batch_size: int,
        seeds: Sequence[int],
        transforms: Sequence[Transform] | None = None,
    ) -> None:
        self.tensors, self.batch_size = tensors, batch_size
        self.transforms = list(transforms) if transforms is not None else None
        self.sampler = PackedSampler(len(tensors[1]), seeds)
        self.batch_sampler = None  # Lightning inspects ``sampler``/``batch_sampler`` like a DataLoader's

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        orders = self.sampler.orders().to(self.tensors[0].device)
        b = self.batch_size
        for i in range(len(self)):
            indices = orders[:, i * b : (i + 1) * b]
            yield self.transform(self.tensors[0][indices]), self.tensors[1][indices]

    def transform(self, x: Tensor) -> Tensor:
        """Each replica's batch ``x[k]`` through its own transform (of this epoch)."""
        if self.transforms is None:
            return x
        epoch = self.sampler.epoch
        first = self.transforms[0]
        if all(t is first for t in self.transforms):  # the same for every replica (one that draws nothing)
            return first(x.flatten(0, 1), epoch).unflatten(0, x.shape[:2])
        return torch.stack([t(x[k], epoch) for k, t in enumerate(self.transforms)])


class PackedDataModule(L.LightningDataModule):
    """The data of a packed group: each replica's training batches, and the shared val/test batches.

    Args:
        data: the group's data module, set up (its splits built); every replica's run has the same data
            and split (``data_seed``), so its splits serve them all.
        seeds: the replicas' seeds (their runs' ``seed`` and ``data.seed``).
    """

    def __init__(self, data: InMemoryDataModule, seeds: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(data, InMemoryDataModule) or not data.splits:
            raise ConfigError("packed training needs an in-memory data set, set up (its splits built)")
        self.data, self.seeds = data, list(seeds)
        self.transforms = replica_transforms(data.train_transform, self.seeds, data.display_name)
        self.on_device: dict[str, tuple[Tensor, Tensor]] = {}

    def device_split(self, split: str) -> tuple[Tensor, Tensor]:
        """The split's tensors on the training device (moved once)."""
        if split not in self.on_device:
            device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
            self.on_device[split] = tuple(t.to(device) for t in self.data.splits[split])
        return self.on_device[split]

    def train_dataloader(self) -> PackedTrainLoader:
        return PackedTrainLoader(
            self.device_split("train"), self.data.batch_size, self.seeds, self.transforms
        )

    def eval_loader(self, split: str) -> TensorBatchLoader:
        """The split's batches as the unpacked run's data module gives them (in order, unshuffled)."""
        tensors = self.device_split(split)
        return TensorBatchLoader(
            tensors,
            self.data.eval_batch_size,
            EpochSampler(len(tensors[1]), shuffle=False),
            transform=self.data.eval_transform,
        )

    def val_dataloader(self) -> TensorBatchLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> TensorBatchLoader:
        return self.eval_loader("test")

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """The batches are already on the device: skip Lightning's walk over them."""
        if batch[0].device == device:
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
