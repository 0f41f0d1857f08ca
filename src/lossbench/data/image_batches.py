"""One split of an image folder as a dataset of whole batches, decoded and transformed in the workers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from lossbench.data.image_files import clipped
from lossbench.data.loader import BatchSpec
from lossbench.errors import DataError

#: Pillow's modes of 16-bit grey images (a 16-bit PNG opens as one of them); a 32-bit ``I`` image (a TIFF
#: of 0..255 values, say) is left to ``convert``, unless its values leave 0..255
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def load_image(path: str, mode: str) -> Image.Image:
    """Decode one file to a PIL image in ``mode`` (``RGB`` or ``L``).

    A 16-bit grey image is scaled to 8 bits (``v / 257``, 65535 to 255) first: Pillow's ``convert``
    clips its values at 255, which turns almost every pixel white. Data of fewer bits stored in 16 (12-bit
    scans) keep their share of the range: 0..4095 becomes 0..16. A 32-bit image is refused unless it is an
    integer one of 0..255 values (a float one, or one of wider values, would be clipped).
    """
    with open(path, "rb") as f, Image.open(f) as img:
        if clipped(img):  # checked in setup unless data.check_files=false
            raise DataError(
                f"{path}: 32-bit pixels (Pillow mode {img.mode}) that an 8-bit conversion would clip to "
                "black or white: save it as an 8- or 16-bit image"
            )
        if img.mode in SIXTEEN_BIT_MODES:
            values = np.asarray(img, dtype=np.float64) / 257.0
            return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert(mode)
        return img.convert(mode)


def keep_batch(batch: Any) -> Any:
    """The ``DataLoader``'s collate: the dataset already returns whole batches."""
    return batch


class FolderBatches(Dataset):
    """Decodes and transforms the images of one split, one :class:`BatchSpec` per item."""

    def __init__(
        self,
        folder: ImageFolder,
        indices: np.ndarray,
        labels: np.ndarray,
        transform: v2.Transform,
        finish: v2.Transform,
        augment_padding: int | None = None,
        seed: int = 0,
    ) -> None:
        self.folder, self.indices, self.labels = folder, indices, torch.as_tensor(labels, dtype=torch.long)
        self.transform, self.finish, self.padding, self.seed = transform, finish, augment_padding, seed

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, position: int, epoch: int = 0) -> Tensor:
        """The model input of one sample: decoded, resized, (augmented,) normalised."""
        index = int(self.indices[position])
        path = self.folder.samples[index][0]
        try:
            x = self.transform(self.folder.loader(path))
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
            raise DataError(
                f"data: cannot decode image {path} ({type(err).__name__}: {err}): fix or delete it "
                "(data.check_files=full decodes every image in setup, naming all such files before training)"
            ) from err
        if self.padding is not None:  # random crop of the zero-padded image, then a random h-flip
            rng = np.random.default_rng((self.seed, epoch, index))
            p, (h, w) = self.padding, x.shape[-2:]
            dy, dx = rng.integers(0, 2 * p + 1, size=2)
            x = F.pad(x, (p, p, p, p))[..., dy : dy + h, dx : dx + w]
            if rng.random() < 0.5:
                x = x.flip(-1)
        return self.finish(x)

    def __getitem__(self, spec: BatchSpec) -> tuple:
        x = torch.stack([self.image(p, spec.epoch) for p in spec.positions])
        y = self.labels[spec.positions]
        return (x, y) if spec.scale is None else (x, y, spec.scale)
