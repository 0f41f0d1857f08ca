"""The files of an image folder: hidden entries left out, a file reached twice refused, and every unreadable
file named at once.

A folder copied from a Mac, a NAS or a notebook holds hidden entries that look like data to torchvision's
``ImageFolder``: AppleDouble files (``._cat.jpg``, with an image extension but no image) and folders such
as ``.ipynb_checkpoints`` (a class of its own) or a NAS's thumbnails (``cat/.@__thumb/``, near-copies of
the photos). :class:`VisibleImageFolder` skips every path with a part below the root that starts with a
dot, through ``ImageFolder``'s documented ``find_classes`` and ``is_valid_file`` hooks. Images in formats
``ImageFolder`` does not read (``.gif``, ``.jfif``), or beside the class folders, are counted in a warning
(:func:`unused_images`); a root of split folders (``train/``, ``test/``) is refused
(:func:`check_not_splits`).
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from lossbench.errors import DataError

#: the unreadable files an error names (it counts the others)
NAMED = 5
#: folder names that name a split rather than a class
SPLIT_FOLDERS = ("train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval")
#: Pillow's mode of float pixels, which no 8-bit conversion maps (``convert`` rounds and clips them: an
#: image of 0..1 values turns black)
FLOAT_MODE = "F"
#: Pillow's modes of 32-bit integer pixels: ``convert`` keeps 0..255 values and clips wider ones
WIDE_INTEGER_MODES = ("I", "I;32", "I;32B", "I;32L", "I;32S")

log = logging.getLogger("lossbench")


def clipped(img: Image.Image) -> bool:
    """Whether an 8-bit conversion of ``img`` would clip it: float pixels, or integer ones beyond 0..255
    (the latter decoded to tell)."""
    if img.mode == FLOAT_MODE:
        return True
    if img.mode not in WIDE_INTEGER_MODES:
        return False
    values = np.asarray(img)
    return bool(values.min() < 0 or values.max() > 255)


def named(items: Sequence[str]) -> str:
    """The first :data:`NAMED` of ``items``, and how many more."""
    more = f" and {len(items) - NAMED} more" if len(items) > NAMED else ""
    return ", ".join(items[:NAMED]) + more


def is_hidden(path: str, root: str) -> bool:
    """Whether a part of ``path`` below ``root`` starts with a dot (the root itself may be under one)."""
    return any(part.startswith(".") for part in Path(os.path.relpath(path, root)).parts)


def is_visible_image(path: str, root: str) -> bool:
    """A file with an image extension, no part of whose path below ``root`` starts with a dot."""
    return not is_hidden(path, root) and has_file_allowed_extension(path, IMG_EXTENSIONS)


def same_name(a: str, b: str) -> bool:
    """Folder names equal once Unicode-normalised (macOS writes ``é`` as ``e`` + accent)."""
    return unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)


class VisibleImageFolder(ImageFolder):
    """torchvision's ``ImageFolder`` without hidden class folders or files (see the module docstring)."""

    def __init__(self, root: str, **kwargs) -> None:
        super().__init__(root, is_valid_file=lambda path: is_visible_image(path, root), **kwargs)

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
        raise DataError(
            f"data.{key}: {len(repeated)} file(s) are reached by more than one path, so copies of one image "
            f"would be in training and test at once: {named(repeated)}: remove the "
            "symbolic link that leads back into the folder, or the linked copies"
        )


def check_images(key: str, paths: Sequence[str], decode: bool = False) -> None:
    """Open every file's header (``decode``: decode the whole image); one ``DataError`` naming the
    unreadable ones (the first :data:`NAMED`, and how many in all), so that one pass finds them all, or
    those an 8-bit conversion would clip (:func:`clipped`)."""
    bad: list[str] = []
    wide: list[str] = []
    for path in paths:
        try:
            with Image.open(path) as img:  # reads the header only
                if clipped(img):
                    wide.append(f"{path} ({img.mode})")
                if decode:
                    img.load()
        except Exception as err:
            bad.append(f"{path} ({type(err).__name__})")
    if wide:
        raise DataError(
            f"data.{key}: {len(wide)} image(s) hold float pixels, or 32-bit ones beyond 0..255, which an "
            f"8-bit conversion clips (0..1 floats turn black): {named(wide)}: save them as 8- or 16-bit "
            "images"
        )
    if bad:
        raise DataError(
            f"data.{key}: {len(bad)} file(s) are not readable images: {named(bad)}: fix or "
            "delete them (data.check_files=false skips this check)"
        )


def check_not_splits(key: str, root: Path, folder: ImageFolder) -> None:
    """One ``DataError`` when two or more class folders are split folders (``train/``, ``test/``) holding
    most of their images in class folders of their own, whatever else the root holds (``unlabeled/``,
    ``annotations/``, a stray image): ``ImageFolder`` would learn to tell the splits apart."""
    direct, deeper = np.zeros(len(folder.classes)), np.zeros(len(folder.classes))
    for path, target in folder.samples:
        (direct if Path(path).parent.parent == root else deeper)[target] += 1
    splits = [c for i, c in enumerate(folder.classes) if c.lower() in SPLIT_FOLDERS and deeper[i] > direct[i]]
    if len(splits) < 2:
        return
    kinds = (("train",), ("val", "dev"), ("test", "eval"))  # to train on: the first kind there

    def kind(name: str) -> int:
        return next((i for i, k in enumerate(kinds) if name.lower().startswith(k)), len(kinds))

    train = min(splits, key=kind)
    test = next((c for c in splits if kind(c) == 2 and c != train), None)
    fix = f"data.root={root / train}" + (f" data.test_root={root / test}" if test else "")
    raise DataError(
        f"data.{key}={root} holds split folders ({', '.join(splits)}), each of class folders, not class "
        f"folders: its classes would be the splits. Point it at one split: {fix}"
    )


def check_separate(train: ImageFolder, test: ImageFolder) -> None:
    """One ``DataError`` when ``data.test_root`` holds files of ``data.root`` (the same folder, or one
    inside the other): the test split would be training images."""
    trained = {os.path.realpath(path) for path, _ in train.samples}
    shared = [path for path, _ in test.samples if os.path.realpath(path) in trained]
    if shared:
        raise DataError(
            f"data.test_root={test.root} holds {len(shared)} file(s) of data.root={train.root}, so the test "
            f"split would be training images: {named(shared)}: give a test folder of other "
            "images (or leave data.test_root=null to hold out a share of data.root)"
        )


def unused_images(key: str, root: Path, folder: ImageFolder) -> None:
    """Warn once of the visible files Pillow reads that ``ImageFolder`` leaves out: other image formats
    (``.gif``, ``.jfif``) in the class folders, and images beside them, each counted by extension."""
    readable = set(Image.registered_extensions()) - {".txt", ".pdf", ".ps", ".eps"}
    used = {path for path, _ in folder.samples}
    skipped: Counter[str] = Counter()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path, ext = os.path.join(dirpath, name), os.path.splitext(name)[1].lower()
            if not name.startswith(".") and ext in readable and path not in used:
                skipped["beside the class folders" if Path(dirpath) == root else ext] += 1
    if skipped:
        counts = ", ".join(f"{n} {what}" for what, n in sorted(skipped.items()))
        log.warning(
            "data.%s=%s: %d image file(s) are not used (%s): the class folders' images are read in %s; "
            "convert the others to one of these formats, or move them into a class folder",
            key, root, sum(skipped.values()), counts, " ".join(IMG_EXTENSIONS),
        )  # fmt: skip


def check_same_class_folders(classes: Sequence[str], test_classes: Sequence[str], test_root: Path) -> None:
    """One ``DataError`` naming the classes ``data.test_root`` lacks and those it adds (names compared
    Unicode-normalised: a folder copied from macOS spells ``é`` apart)."""
    missing = [c for c in classes if not any(same_name(c, t) for t in test_classes)]
    extra = [t for t in test_classes if not any(same_name(c, t) for c in classes)]
    if missing or extra:
        lacks = f"lacks class folder(s) {', '.join(map(repr, missing))}" if missing else ""
        adds = f"has class folder(s) {', '.join(map(repr, extra))} that data.root has not" if extra else ""
        raise DataError(
            f"data.test_root={test_root} {' and '.join(p for p in (lacks, adds) if p)}: both need the same "
            "class sub-folders"
        )
