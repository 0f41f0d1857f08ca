"""Checks of a classification target's classes: labels spelled alike, and classes too small to split.

The stratified train/val/test split needs a class's samples in each of its three splits, so a class of
fewer than :data:`SPLIT_MINIMUM` samples is a problem, every such class named with its count in one entry
(:func:`lossbench.data.splits.split_indices` would name the first only, after torch loads).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lossbench.data.table_problems import Problems, note, plain

log = logging.getLogger(__name__)

#: the fewest samples of a class the stratified train/val/test split takes: one in each split
SPLIT_MINIMUM = 3


def note_near_duplicate_labels(column: str, classes: np.ndarray) -> None:
    """Warn when text labels differ only in case or surrounding spaces (``yes``, ``Yes``, ``yes ``): each is
    a class of its own."""
    spellings: dict[str, list[str]] = {}
    for label in classes:
        if isinstance(label, str):
            spellings.setdefault(label.strip().casefold(), []).append(label)
    alike = [sorted(group) for group in spellings.values() if len(group) > 1]
    if alike:
        shown = "; ".join(", ".join(repr(v) for v in group) for group in alike[:3])
        note(
            log,
            logging.WARNING,
            "target %r has labels that differ only in case or spaces (%s): each is a class of its own; make "
            "them one in the file if they are one class",
            column,
            shown,
        )


def small_classes_problem(column: str, labels: pd.Series, problems: Problems) -> bool:
    """Record a problem naming every class of ``labels`` with fewer than :data:`SPLIT_MINIMUM` samples;
    whether there was one. Numeric labels name ``data.task=regression`` too (a quantity, not classes)."""
    counts = labels.dropna().value_counts(sort=False)
    small = counts[counts < SPLIT_MINIMUM].sort_index()
    if not len(small):
        return False
    shown = [(repr(plain(label)), int(count)) for label, count in small.items()]
    if len(shown) == 1:
        what = f"class {shown[0][0]} has only {shown[0][1]} sample(s)"
    else:
        listed = ", ".join(f"{label} ({count})" for label, count in shown[:20])
        more = f" … and {len(shown) - 20} more" if len(shown) > 20 else ""
        what = f"{len(shown)} classes have fewer than {SPLIT_MINIMUM} samples: {listed}{more}"
    how = f"drop or merge {'that class' if len(shown) == 1 else 'those classes'} in the file, or add samples"
    numbers = all(isinstance(plain(v), int | float) and not isinstance(plain(v), bool) for v in counts.index)
    if numbers:
        how += f"; or, if {column!r} is a quantity rather than classes, set data.task=regression"
    problems.add(
        f"target {column!r}: {what}, too few for a stratified train/val/test split (needs "
        f"{SPLIT_MINIMUM} per class)",
        how,
    )
    return True
