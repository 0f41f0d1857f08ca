"""Batches by index slicing of tensors held in memory: no per-sample ``__getitem__`` and no collate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class EpochSampler:
    """Index order for one epoch, sharded over ranks like :class:`torch.utils.data.DistributedSampler`.

    The permutation depends only on ``(seed, epoch)`` so a resumed run sees the same order. Lightning
    calls :meth:`set_epoch` on ``loader.sampler`` before each training epoch. With ``pad=True`` every rank
    gets the same number of indices (needed for DDP training, where ranks step together); evaluation
    uses ``pad=False`` so no sample is counted twice.
    """

    def __init__(
        self, size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1, pad: bool = True
    ) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.size / self.world_size)
        return len(range(self.rank, self.size, self.world_size))

    def indices(self) -> Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.arange(self.size)
        if self.world_size == 1:
            return order
        if self.pad:
            total = len(self) * self.world_size
            order = torch.cat([order, order[: total - self.size]]) if total > self.size else order
        return order[self.rank :: self.world_size]


class TensorBatchLoader:
    """An iterable of ``(x, y)`` batches sliced from tensors, optionally transformed batch-wise.

    Args:
        tensors: tensors with the same first dimension (already on the training device).
        batch_size: samples per batch.
        sampler: the :class:`EpochSampler` giving each epoch's indices.
        drop_last: drop a last incomplete batch.
        transform: applied to the first tensor of each batch (e.g. batched augmentation on the device).
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        sampler: EpochSampler,
        drop_last: bool = False,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.tensors, self.batch_size, self.sampler = tensors, batch_size, sampler
        self.drop_last, self.transform = drop_last, transform
        self.batch_sampler = None  # Lightning inspects ``sampler``/``batch_sampler`` like a DataLoader's

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        contiguous = not self.sampler.shuffle and self.sampler.world_size == 1
        idx = None if contiguous else self.sampler.indices().to(self.tensors[0].device)
        for b in range(len(self)):
            lo, hi = b * self.batch_size, (b + 1) * self.batch_size
            batch = (
                tuple(t[lo:hi] for t in self.tensors)
                if idx is None
                else tuple(t[idx[lo:hi]] for t in self.tensors)
            )
            if self.transform is not None:
                batch = (self.transform(batch[0]), *batch[1:])
            yield batch
