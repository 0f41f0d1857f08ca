"""Batch-wise image transforms that run on the training device (no per-sample Python, no PIL).

Images are held as ``uint8`` ``[N, C, H, W]`` tensors on the device; these turn a batch into normalised
``float32``. Signature of every transform: ``transform(x, epoch) -> x`` (see :class:`TensorBatchLoader`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class Normalize:
    """``uint8`` (or ``[0, 1]`` float) images → ``(x/255 − mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)

    def to_unit(self, x: Tensor) -> Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def normalize(self, x: Tensor) -> Tensor:
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return (x - self.mean) / self.std

    def __call__(self, x: Tensor, epoch: int = 0) -> Tensor:
        return self.normalize(self.to_unit(x))

    def for_seed(self, seed: int) -> Normalize:
        """This transform as a run with ``data.seed=seed`` builds it: itself (it draws nothing)."""
        return self


class PadCropFlip(Normalize):
    """The standard CIFAR augmentation, batched: zero-pad ``pad`` px, random crop back, random h-flip.

    Equivalent to ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()`` + ``Normalize`` per sample
    (padding is black before normalisation, as torchvision pads the image). Crop offsets and flips are
    drawn per sample from a generator on the batch's device, reseeded from ``(seed, rank, epoch)`` at the
    first batch of every epoch, so runs are reproducible and a resumed epoch repeats its augmentation.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        pad: int = 4,
        flip: bool = True,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        super().__init__(mean, std)
        self.pad, self.flip, self.seed, self.rank = pad, flip, seed, rank
        self._epoch: int | None = None
        self._gen: torch.Generator | None = None

    def for_seed(self, seed: int) -> PadCropFlip:
        """This transform as a run with ``data.seed=seed`` builds it: a copy with that seed and its own
        generator (so packed replicas each draw their own run's crops and flips)."""
        return PadCropFlip(
            self.mean.flatten().tolist(), self.std.flatten().tolist(), self.pad, self.flip, seed, self.rank
        )

    def _generator(self, device: torch.device, epoch: int) -> torch.Generator:
        if self._gen is None or self._epoch != epoch or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(
                (self.seed * 1_000_003 + self.rank * 10_007 + epoch) % 2**63
            )
            self._epoch = epoch
        return self._gen

    def __call__(self, x: Tensor, epoch: int = 0) -> Tensor:
        x = self.to_unit(x)
        n, c, h, w = x.shape
        g = self._generator(x.device, epoch)
        p = self.pad
        if p > 0:
            x = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=g)
        dx = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=g)
        rows = dy[:, None] + torch.arange(h, device=x.device)  # [N, H]
        cols = torch.arange(w, device=x.device).expand(n, w)
        if self.flip:
            flipped = torch.rand(n, device=x.device, generator=g) < 0.5
            cols = torch.where(flipped[:, None], cols.flip(-1), cols)
        cols = dx[:, None] + cols  # [N, W]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        out = x[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
        return self.normalize(out)
