"""The train/val/test split every data module shares: stratified for classification, fixed by data_seed."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from lossbench.errors import ConfigError, DataError, check_range

log = logging.getLogger(__name__)


def split_indices(
    y: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    data_seed: int,
    stratify: bool,
    fixed_test: np.ndarray | None = None,
    class_names: Sequence | None = None,
    where: str = "data",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted train/val/test indices into ``y``.

    Without ``fixed_test``, ``test_fraction`` of the samples is the test split and ``val_fraction`` (of the
    whole) the validation split. With ``fixed_test`` (indices of an official test set; empty when the test
    set lives elsewhere), the remaining samples give ``val_fraction`` of themselves to validation. A
    class too small for a stratified split, or a split too small for the classes, is a :class:`DataError`
    naming the class (``class_names[c]`` when given) and the fix.
    """
    idx = np.arange(len(y))
    labels = y if stratify else None
    test = None if fixed_test is None else np.asarray(fixed_test, dtype=np.int64)
    rest = idx if test is None else np.setdiff1d(idx, test)  # the samples the splits are drawn from
    if labels is not None:
        counts = np.bincount(labels[rest])
        need = 2 if test is not None else 3  # one sample in each split it is drawn into
        small = [c for c in range(len(counts)) if 0 < counts[c] < need]
        if small:
            names = [repr(class_names[c]) if class_names is not None else str(c) for c in small]
            given = " beside the given test split" if test is not None else ""
            what = (
                f"class {names[0]} has only {counts[small[0]]} sample(s)"
                if len(small) == 1
                else f"{len(small)} classes have fewer than {need} samples: "
                + ", ".join(f"{name} ({counts[c]})" for name, c in zip(names, small, strict=True))
            )
            raise DataError(
                f"{where}: {what}{given}, too few for a stratified train/val"
                f"{'' if test is not None else '/test'} split (needs {need}): drop or merge "
                f"{'that class' if len(small) == 1 else 'those classes'}, or add samples"
            )
    try:
        if test is None:
            rest, test = train_test_split(
                idx, test_size=test_fraction, stratify=labels, random_state=data_seed
            )
            val_share = val_fraction / (1.0 - test_fraction)
        else:
            val_share = val_fraction
        train, val = train_test_split(
            rest,
            test_size=val_share,
            stratify=None if labels is None else labels[rest],
            random_state=data_seed,
        )
    except ValueError as err:  # scikit-learn: a split too small for the number of classes
        if fixed_test is not None:  # the test split is given: only the validation share is drawn
            raise DataError(
                f"{where}: cannot draw data.val_fraction={val_fraction:g} of the {len(rest)} training "
                f"samples (the test split is given) ({err}): {val_share_fix(labels, rest, val_fraction)}"
            ) from None
        raise DataError(
            f"{where}: cannot split {len(y)} samples by data.val_fraction={val_fraction:g} / "
            f"data.test_fraction={test_fraction:g} ({err}): raise the fractions or add samples"
        ) from None
    return np.sort(train), np.sort(val), np.sort(test)


@dataclass(frozen=True)
class Split:
    """How a data module splits its samples: validated once when built, applied by :meth:`indices`.

    Args:
        val_fraction, test_fraction: shares of the whole data set held out, each in ``(0, 1)``, their sum
            below 1 unless the test split is given elsewhere (``separate_test``).
        data_seed: fixes the split (and nothing about the model).
        separate_test: the test split is an official one (a separate folder or file), so only
            ``val_fraction`` is drawn from these samples.
    """

    val_fraction: float = 0.2
    test_fraction: float = 0.2
    data_seed: int = 0
    separate_test: bool = False

    def __post_init__(self) -> None:
        for key in ("val_fraction", "test_fraction"):
            check_range(
                f"data.{key}", getattr(self, key), 0.0, 1.0, low_inclusive=False, high_inclusive=False
            )
        total = self.val_fraction + self.test_fraction
        if not self.separate_test and total >= 1.0:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction = {total:g} leaves no training data: make their "
                "sum < 1"
            )

    def indices(
        self,
        y: np.ndarray,
        stratify: bool,
        fixed_test: np.ndarray | None = None,
        class_names: Sequence | None = None,
        where: str = "data",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted train/val/test indices into ``y`` (see :func:`split_indices`)."""
        return split_indices(
            y, self.val_fraction, self.test_fraction, self.data_seed, stratify, fixed_test, class_names, where
        )


def val_share_fix(labels: np.ndarray | None, rest: np.ndarray, val_fraction: float) -> str:
    """What fixes a validation share of the samples ``rest`` that scikit-learn could not draw: each split
    needs a sample of every class, so the share lies between ``C/n`` and ``1 - C/n`` (rounded inwards)."""
    classes = len(np.unique(labels[rest])) if labels is not None else 1
    least = math.ceil(100 * classes / max(len(rest), 1)) / 100
    if least > 0.5:
        return f"{len(rest)} samples are too few for {classes} classes in both splits: add samples"
    if val_fraction < least:
        return f"raise data.val_fraction (to about {least:g} or more) or add samples"
    return f"lower data.val_fraction (to about {1 - least:g} or less) or add samples"


def warn_of_labels_never_positive(counts: Any, names: Sequence | None, data: str) -> None:
    """Multi-label: name the labels with no positive in the training split (``counts``, after the
    stressors), which no loss can learn and a class-balanced loss weighs as its rarest."""
    never = [int(i) for i in np.flatnonzero(np.asarray(counts) == 0)]
    if never:
        shown = [repr(names[i]) if names is not None else str(i) for i in never[:5]]
        log.warning(
            "data %s: label(s) %s have no positive in the training split: no loss can learn them (a "
            "class-balanced loss weighs them as labels seen once); add rows with them, or leave them out "
            "of the targets",
            data,
            ", ".join(shown) + (f" and {len(never) - 5} more" if len(never) > 5 else ""),
        )
