"""The files of an image folder: hidden entries left out, a file reached twice refused, and every unreadable
file named at once.

A folder copied from a Mac or a notebook holds hidden entries that look like data to torchvision's
``ImageFolder``: AppleDouble files (``._cat.jpg``, with an image extension but no image) and folders such
as ``.ipynb_checkpoints`` (a class of its own). :class:`VisibleImageFolder` skips every name that starts
with a dot, through ``ImageFolder``'s documented ``find_classes`` and ``is_valid_file`` hooks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from lossbench.errors import DataError

#: the unreadable files an error names (it counts the others)
NAMED = 5


def is_visible_image(path: str) -> bool:
    """A file with an image extension whose name does not start with a dot."""
    return not os.path.basename(path).startswith(".") and has_file_allowed_extension(path, IMG_EXTENSIONS)


class VisibleImageFolder(ImageFolder):
    """torchvision's ``ImageFolder`` without hidden class folders or files (see the module docstring)."""

    def __init__(self, root: str, **kwargs) -> None:
        super().__init__(root, is_valid_file=is_visible_image, **kwargs)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        classes, _ = super().find_classes(directory)
        classes = [c for c in classes if not c.startswith(".")]
        if not classes:
            raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
        return classes, {name: i for i, name in enumerate(classes)}


def check_distinct(key: str, paths: Sequence[str]) -> None:
    """One ``DataError`` when a file is reached by more than one path (a symbolic link back into the
    folder, or a linked copy): its copies would sit in the training and the test split at once."""
    seen: dict[str, str] = {}
    repeated: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            repeated.append(f"{path} (also {seen[real]})")
        else:
            seen[real] = path
    if repeated:
        more = f" and {len(repeated) - NAMED} more" if len(repeated) > NAMED else ""
        raise DataError(
            f"data.{key}: {len(repeated)} file(s) are reached by more than one path, so copies of one image "
            f"would be in training and test at once: {', '.join(repeated[:NAMED])}{more}: remove the "
            "symbolic link that leads back into the folder, or the linked copies"
        )


def check_images(key: str, paths: Sequence[str], decode: bool = False) -> None:
    """Open every file's header (``decode``: decode the whole image); one ``DataError`` naming the
    unreadable ones (the first :data:`NAMED`, and how many in all), so that one pass finds them all."""
    bad: list[str] = []
    for path in paths:
        try:
            with Image.open(path) as img:  # reads the header only
                if decode:
                    img.load()
        except Exception as err:
            bad.append(f"{path} ({type(err).__name__})")
    if bad:
        more = f" and {len(bad) - NAMED} more" if len(bad) > NAMED else ""
        raise DataError(
            f"data.{key}: {len(bad)} file(s) are not readable images: {', '.join(bad[:NAMED])}{more}: fix or "
            "delete them (data.check_files=false skips this check)"
        )
