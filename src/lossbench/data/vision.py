"""The standard vision benchmarks through torchvision's own download and parsing code.

``mnist``, ``fashion_mnist`` (idx files under ``<root>/MNIST/raw``, ``<root>/FashionMNIST/raw``) and
``cifar10``, ``cifar100`` (python pickle batches under ``<root>/cifar-10-batches-py``,
``<root>/cifar-100-python``), with ``root = paths.data_dir``. Nothing is downloaded unless
``data.download=true``, and then in ``prepare_data`` (once per node, not on every DDP rank); missing
files give one error naming the path and that flag, a corrupt file one error naming the file and the fix.

Images stay ``uint8`` ``[N, C, H, W]`` in memory and on the device (4× smaller than float); batches are
normalised with the standard per-channel statistics, and CIFAR training batches augmented (4-px pad +
random crop + horizontal flip), on the device (:mod:`lossbench.data.transforms`). The official test set
is the test split; validation is a stratified hold-out of the official training set (``val_fraction``).

Integrity: torchvision checks CIFAR files against the official MD5 sums (MNIST's extracted files carry
none; they are checked by parsing). ``data.verify_checksums=false`` skips that MD5 check — and only that:
the files are still read by torchvision's parser. It exists for files that are valid but not byte-identical
to the official release (the test suite's small self-written CIFAR files, re-packed copies).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torchvision import datasets as tvd

from lossbench.data.base import InMemoryDataModule
from lossbench.data.transforms import Normalize, PadCropFlip
from lossbench.data.vision_files import first_unreadable, md5_mismatch
from lossbench.errors import DataError, check_choice
from lossbench.task import Task

#: name -> (torchvision class, number of classes, per-channel mean, per-channel std)
VISION_DATASETS: dict[str, tuple[type, int, tuple[float, ...], tuple[float, ...]]] = {
    "mnist": (tvd.MNIST, 10, (0.1307,), (0.3081,)),
    "fashion_mnist": (tvd.FashionMNIST, 10, (0.2860,), (0.3530,)),
    "cifar10": (tvd.CIFAR10, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": (tvd.CIFAR100, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def _without_md5(cls: type) -> type:
    """The CIFAR class with the MD5 sums removed: ``check_integrity(path, None)`` only checks existence."""
    return type(
        cls.__name__,
        (cls,),
        {
            "train_list": [[name, None] for name, _ in cls.train_list],
            "test_list": [[name, None] for name, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
        },
    )


def expected_files(name: str, root: str | Path) -> list[Path]:
    """The files torchvision reads for data set ``name`` under ``root``."""
    cls = VISION_DATASETS[name][0]
    root = Path(root)
    if issubclass(cls, tvd.MNIST):
        raw = root / cls.__name__ / "raw"
        return [raw / os.path.splitext(f)[0] for f, _ in cls.resources]
    folder = root / cls.base_folder
    return [folder / f for f, _ in cls.train_list + cls.test_list] + [folder / cls.meta["filename"]]


class TorchvisionDataModule(InMemoryDataModule):
    """MNIST, Fashion-MNIST, CIFAR-10 or CIFAR-100, held as ``uint8`` tensors.

    Args:
        name: ``mnist``, ``fashion_mnist``, ``cifar10`` or ``cifar100``.
        root: where the data lives (``paths.data_dir``).
        download: download into ``root`` when missing (needs network access).
        augment: pad-crop-flip the training batches; ``None``: on for CIFAR, off for (Fashion-)MNIST.
        verify_checksums: check CIFAR files against the official MD5 sums (see the module docs).
        **kwargs: :class:`InMemoryDataModule` arguments (``val_fraction``, stressors, loader, …);
            ``standardize`` means the per-channel normalisation here.
    """

    task = Task.CLASSIFICATION
    official_test = True

    def __init__(
        self,
        name: str = "cifar10",
        root: str = "data",
        download: bool = False,
        augment: bool | None = None,
        verify_checksums: bool = True,
        **kwargs: Any,
    ) -> None:
        self.name = check_choice("data.name", name, tuple(VISION_DATASETS))
        self.root, self.download, self.verify_checksums = str(root), bool(download), bool(verify_checksums)
        self.augment = name.startswith("cifar") if augment is None else bool(augment)
        if kwargs.get("num_classes") is None:
            kwargs["num_classes"] = VISION_DATASETS[name][1]
        kwargs.setdefault("val_fraction", 0.1)
        super().__init__(**kwargs)

    def _dataset_class(self) -> type:
        cls = VISION_DATASETS[self.name][0]
        if not self.verify_checksums and not issubclass(cls, tvd.MNIST):
            cls = _without_md5(cls)
        return cls

    def prepare_data(self) -> None:
        """Download into ``root`` when files are missing and ``data.download=true``: Lightning runs this hook
        once per node (the training entry point calls it on local rank 0 before any other process starts)."""
        files = expected_files(self.name, self.root)
        if not self.download or all(f.is_file() for f in files):
            return
        try:
            for train in (True, False):
                self._dataset_class()(self.root, train=train, download=True)
        except Exception as err:  # network errors, HTTP errors, partial files, ...
            raise DataError(
                f"data={self.name}: download into {self.root} failed ({type(err).__name__}: {err}); "
                "check network access, or download the files yourself into paths.data_dir"
            ) from None

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        files = expected_files(self.name, self.root)
        missing = [f for f in files if not f.is_file()]
        if missing:
            fix = (
                "prepare_data() downloads them (Lightning and lossbench-train call it before setup)"
                if self.download
                else "Download it with data.download=true, or point paths.data_dir at a directory holding it"
            )
            packed = [f for f in missing if f.with_name(f.name + ".gz").is_file()]
            archive = Path(self.root) / getattr(VISION_DATASETS[self.name][0], "filename", "")
            if archive.suffix == ".gz" and archive.is_file():  # CIFAR's archive, not extracted
                fix = f"{archive.name} is there: extract it where it is (tar xzf {archive} -C {self.root})"
            elif packed:
                fix = (
                    f"{packed[0].name}.gz is there: extract the .gz files where they are (gunzip "
                    f"{packed[0].parent}/*.gz), as torchvision's download does"
                )
            raise DataError(
                f"data={self.name} not found: {missing[0]} is missing ({len(missing)} of {len(files)} files) "
                f"under data dir {self.root}. {fix}"
            )
        cls = self._dataset_class()
        folder = files[0].parent
        try:
            parts = [cls(self.root, train=train, download=False) for train in (True, False)]
        except Exception as err:  # torchvision raises RuntimeError, AssertionError, pickle errors, ...
            checksum = "corrupted" in str(err) and self.verify_checksums
            bad = first_unreadable(files)
            mismatch = (
                md5_mismatch(VISION_DATASETS[self.name][0], self.root) if checksum and not bad else None
            )
            what = f"{type(err).__name__}: {str(err) or repr(err)}"  # torchvision's, when no file is named
            if bad:
                what = bad
            elif mismatch:
                what = f"{mismatch} is not the official file (its MD5 sum differs)"
            hint = (
                " (data.verify_checksums=false skips the check for valid re-packed files)" if checksum else ""
            )
            raise DataError(
                f"data={self.name}: corrupt or unreadable files in {folder}: {what}{hint}. Replace the file "
                f"with the official one, or delete {folder} and re-run with data.download=true"
            ) from None
        xs, ys = [], []
        for ds in parts:
            x = np.asarray(ds.data)
            x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # MNIST [N,H,W]; CIFAR [N,H,W,C]
            y = np.asarray(ds.targets)
            if len(x) != len(y):
                bad = first_unreadable(files)
                which = f": {bad}" if bad else ""
                raise DataError(
                    f"data={self.name}: {len(x)} images but {len(y)} labels in {folder}{which}: the files "
                    f"are corrupt or mismatched. Delete {folder} and re-run with data.download=true"
                )
            xs.append(np.ascontiguousarray(x, dtype=np.uint8))
            ys.append(y)
        n_train = len(ys[0])
        self.fixed_test = np.arange(n_train, n_train + len(ys[1]))
        return np.concatenate(xs), np.concatenate(ys)

    def preprocess(self, x: np.ndarray, train: np.ndarray) -> np.ndarray:
        """Keep ``uint8``: normalisation (and augmentation) run batch-wise on the device."""
        _, _, mean, std = VISION_DATASETS[self.name]
        if not self.standardize:
            mean, std = (0.0,) * len(mean), (1.0,) * len(std)
        self.eval_transform = Normalize(mean, std)
        self.train_transform = (
            PadCropFlip(mean, std, seed=self.seed) if self.augment else Normalize(mean, std)
        )
        return x
