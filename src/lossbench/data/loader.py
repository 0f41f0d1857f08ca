"""Batches by index slicing of tensors held in memory: no per-sample ``__getitem__`` and no collate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from lossbench.errors import DataError


def epoch_seed(seed: int, epoch: int) -> int:
    """A generator seed for ``(seed, epoch)``: distinct pairs give unrelated orders (``seed + epoch`` would
    give seed ``s + 1`` the orders of seed ``s`` shifted by one epoch)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


class EpochSampler:
    """The index order of one epoch: a permutation seeded by ``(seed, epoch)``, or ``0..size-1``.

    The order depends only on the seed and the epoch, so a resumed run sees the same order. Lightning
    calls :meth:`set_epoch` on ``loader.sampler`` before each training epoch.
    """

    def __init__(self, size: int, shuffle: bool, seed: int = 0) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def indices(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        return torch.randperm(
            self.size, generator=torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        )


def rank_batches(
    order: Tensor, batch_size: int, num_batches: int, train: bool, rank: int, world_size: int
) -> Iterator[tuple[Tensor, float | None]]:
    """This rank's ``(indices, ddp_scale)`` per batch of an epoch's ``order`` (as :class:`TensorBatchLoader`).

    Training cuts ``order`` into global batches of ``batch_size × world_size`` and takes every
    ``world_size``-th index of each, with the loss scale ``len(local) · world_size / len(global)`` (one
    placeholder index with scale 0 for a rank left without any); evaluation and a single process give
    plain batches of ``batch_size`` (scale ``None``), evaluation sharded by rank without padding.
    """
    if not train:
        order = order[rank::world_size]
    b = batch_size * world_size if train else batch_size
    for i in range(num_batches):
        chunk = order[i * b : (i + 1) * b]
        if world_size == 1 or not train:
            yield chunk, None
            continue
        local = chunk[rank::world_size]
        scale = len(local) * world_size / len(chunk)
        if len(local) == 0:
            local, scale = chunk[:1], 0.0
        yield local, scale


class TensorBatchLoader:
    """An iterable of batches sliced from tensors, optionally transformed batch-wise.

    Training (``train=True``) with ``world_size`` processes cuts the epoch's order into *global* batches
    of ``batch_size × world_size`` samples — exactly the batches one process with that batch size would
    see — and gives rank ``r`` every ``world_size``-th sample of each. Each batch then carries a third
    element, the factor ``len(local) · world_size / len(global)`` by which the training step scales its
    mean loss, so that DDP's gradient average equals the gradient of the global batch's mean loss even
    when the last batch does not split evenly. Every sample is used exactly once per epoch; a rank left
    without a sample in the last batch gets one with factor 0 (it contributes nothing). Evaluation
    (``train=False``) shards the samples over ranks without padding: each is counted once.

    Args:
        tensors: tensors with the same first dimension (already on the training device).
        batch_size: samples per batch and process.
        sampler: the :class:`EpochSampler` giving each epoch's order.
        train: global batching (see above) instead of sharding.
        rank, world_size: this process and the number of processes.
        drop_last: drop a last incomplete (global) batch.
        transform: ``transform(x, epoch)`` applied to the first tensor of each batch (e.g. batched
            augmentation on the device; ``epoch`` lets it reseed its generator per epoch).
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        sampler: EpochSampler,
        train: bool = False,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        transform: Callable[[Tensor, int], Tensor] | None = None,
    ) -> None:
        self.tensors, self.batch_size, self.sampler, self.train = tensors, batch_size, sampler, train
        self.rank, self.world_size = rank, world_size
        self.drop_last, self.transform = drop_last, transform
        self.batch_sampler = None  # Lightning inspects ``sampler``/``batch_sampler`` like a DataLoader's

    @property
    def _global_batch(self) -> int:
        return self.batch_size * self.world_size if self.train else self.batch_size

    def _num_samples(self) -> int:
        n = len(self.sampler)
        return n if self.train else len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        n, b = self._num_samples(), self._global_batch
        return n // b if self.drop_last else math.ceil(n / b)

    def _slice(self, idx: Tensor | slice) -> tuple[Tensor, ...]:
        batch = tuple(t[idx] for t in self.tensors)
        if self.transform is not None:
            batch = (self.transform(batch[0], self.sampler.epoch), *batch[1:])
        return batch

    def __iter__(self) -> Iterator[tuple]:
        b = self._global_batch
        if self.world_size == 1 and not self.sampler.shuffle:
            for i in range(len(self)):  # contiguous views, no gather
                yield self._slice(slice(i * b, (i + 1) * b))
            return
        order = self.sampler.indices().to(self.tensors[0].device)
        for local, scale in rank_batches(
            order, self.batch_size, len(self), self.train, self.rank, self.world_size
        ):
            yield self._slice(local) if scale is None else (*self._slice(local), scale)


class TorchEpochSampler(DistributedSampler):
    """An :class:`EpochSampler` as a ``torch.utils.data`` sampler, for the ``loader=torch`` path.

    Single-process it yields the same indices as the tensor path (so both paths give the same batches).
    Under DDP it shards like ``DistributedSampler`` (padding the training order so every rank takes the
    same number of steps; evaluation unpadded); deriving from ``DistributedSampler`` tells Lightning not
    to wrap it again.
    """

    def __init__(self, inner: EpochSampler, rank: int = 0, world_size: int = 1, pad: bool = True) -> None:
        # no DistributedSampler.__init__: it would need a process group
        self.inner, self.rank, self.world_size, self.pad = inner, rank, world_size, pad

    @property
    def shuffle(self) -> bool:  # read by Lightning
        return self.inner.shuffle

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.inner)
        return math.ceil(n / self.world_size) if self.pad else len(range(self.rank, n, self.world_size))

    def __iter__(self) -> Iterator[int]:
        order = self.inner.indices()
        if self.world_size > 1:
            total = len(self) * self.world_size
            if self.pad and total > len(order):
                order = torch.cat([order, order[: total - len(order)]])
            order = order[self.rank :: self.world_size]
        return iter(order.tolist())


class BatchSpec(NamedTuple):
    """One batch as the sampler hands it to a worker: split positions, the epoch and the DDP loss scale."""

    positions: list[int]
    epoch: int
    scale: float | None  # None: no scale element in the batch


class FolderBatchSampler(TorchEpochSampler):
    """One rank's batches of each epoch as :class:`BatchSpec` (for a ``DataLoader`` with ``batch_size=None``).

    The same batches as :class:`TensorBatchLoader`: training with ``world_size``
    processes takes every ``world_size``-th sample of each global batch of ``batch_size × world_size``
    and the scale ``len(local) · world_size / len(global)`` (0 with one placeholder sample for a rank left
    without any); evaluation shards the samples without padding.
    """

    def __init__(
        self, size: int, batch_size: int, train: bool, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(EpochSampler(size, shuffle=train, seed=seed), rank, world_size, pad=False)
        self.batch_size, self.train = batch_size, train

    def __len__(self) -> int:
        if self.train:
            return math.ceil(len(self.inner) / (self.batch_size * self.world_size))
        return math.ceil(len(range(self.rank, len(self.inner), self.world_size)) / self.batch_size)

    def __iter__(self) -> Iterator[BatchSpec]:
        order, epoch = self.inner.indices(), self.inner.epoch
        for local, scale in rank_batches(
            order, self.batch_size, len(self), self.train, self.rank, self.world_size
        ):
            yield BatchSpec(local.tolist(), epoch, scale)


def check_eval_shares(sizes: dict[str, int], tested: bool, world_size: int, where: str) -> None:
    """Refuse the validation split, and the test split when the run tests (``tested``), with fewer samples
    (``sizes``: samples per split) than the ``world_size`` DDP processes, each of which evaluates its own
    share of them: a process left without a batch fails Lightning's loader check (the test split's only
    after training) while the others wait. Called when fit (or test) asks for a loader, before training."""
    read = ("val", "test") if tested else ("val",)
    small = {split: n for split, n in sizes.items() if split in read and n < world_size}
    if world_size > 1 and small:
        said = ", ".join(f"the {split} split has {n} sample(s)" for split, n in small.items())
        raise DataError(
            f"{where}: {said}, fewer than the {world_size} DDP processes that each evaluate a share of "
            "it: train on fewer processes (trainer.devices, trainer.num_nodes) or give that split more "
            "samples" + ("; with test=false a run does not read its test split" if "test" in small else "")
        )
