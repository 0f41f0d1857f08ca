"""A small ImageFolder tree for ``data=image_folder`` (``write_folder``: one folder of 8x8 PNGs per class in
``CLASSES``) and the config that reads it with a CNN (``folder_cfg``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("cat", "dog", "fox")


def write_folder(root: Path, per_class: int = 23, classes: tuple[str, ...] = CLASSES, seed: int = 0) -> Path:
    """8x8 PNGs whose dominant colour channel is the class (a CNN learns it in an epoch or two)."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (8, 8, 3))
            pixels[..., c % 3] += 150
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i:03d}.png")
    return root


def folder_cfg(make_cfg, root: Path, *overrides: str, **kwargs):
    return make_cfg(
        "data=image_folder", f"data.root={root}", "model=cnn", "data.image_size=8", *overrides, **kwargs
    )
