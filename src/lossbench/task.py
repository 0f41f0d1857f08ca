"""The task a data set poses, and the data contract a data module fulfils so any loss and model train on it.

The training entry point reads five things from a data module once its ``setup("fit")`` has run, and
nothing else: the :class:`Task`, the number of classes (classification) or of targets (regression), the
training split's class counts (for class-balanced losses) and the shape of one input sample. Any
``LightningDataModule`` that provides them — plus the usual ``train_dataloader`` / ``val_dataloader`` /
``test_dataloader`` yielding ``(x, y)`` batches — trains with lossbench::

    class MyDataModule(L.LightningDataModule):
        task = Task.CLASSIFICATION
        num_classes = 3
        num_targets = 1
        input_shape = (13,)

        def setup(self, stage=None):           # may be called more than once
            ...                                # build the splits
            self.class_counts = torch.bincount(train_labels, minlength=3)

        def train_dataloader(self): ...        # batches (x [B, 13] float, y [B] long)

Classification targets are class indices ``[B]`` (``long``); multi-label targets are 0/1 vectors ``[B, L]``
(``float``), with ``num_classes = L`` labels and ``class_counts`` the training positives per label;
regression targets are floats ``[B, T]``.
:func:`check_data_contract` checks a module before any training and names everything that is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from numbers import Integral
from typing import Any, Protocol, runtime_checkable

from lossbench.errors import ConfigError


class Task(str, Enum):
    """What a data set asks the model to predict."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    #: several labels per sample: targets are 0/1 vectors ``[B, L]``
    MULTILABEL = "multilabel"

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class BenchDataModule(Protocol):
    """What lossbench reads from a data module after ``setup("fit")`` (see the module docs)."""

    task: Task
    #: classes (classification) or labels (multi-label); ``None`` for regression
    num_classes: int | None
    #: targets per sample: 1 for classification, ``L`` for multi-label, ``T`` for regression ``[B, T]``
    num_targets: int
    #: training samples per class (classification) or positives per label (multi-label); ``None`` for
    #: regression
    class_counts: Any
    #: shape of one input sample, e.g. ``(13,)`` or ``(3, 32, 32)``
    input_shape: Sequence[int]

    def train_dataloader(self) -> Any: ...

    def val_dataloader(self) -> Any: ...

    def test_dataloader(self) -> Any: ...


def _is_int(x: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(x, Integral) and not isinstance(x, bool)


def _problems(dm: Any) -> list[str]:
    """Everything about ``dm`` that breaks the contract, one phrase each."""
    problems = []
    for hook in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if not callable(getattr(dm, hook, None)):
            problems.append(f"a {hook}() method")
    try:
        task = Task(getattr(dm, "task", None))
    except ValueError:
        tasks = ", ".join(t.value for t in Task)
        problems.append(f"task (one of {tasks}), got {getattr(dm, 'task', None)!r}")
        return problems
    shape = getattr(dm, "input_shape", None)
    if not isinstance(shape, Sequence) or len(shape) == 0 or not all(_is_int(s) and s > 0 for s in shape):
        problems.append(f"input_shape (a tuple of positive ints such as (13,) or (3, 32, 32)), got {shape!r}")
    if task in (Task.CLASSIFICATION, Task.MULTILABEL):
        c = getattr(dm, "num_classes", None)
        what = "classes" if task is Task.CLASSIFICATION else "labels"
        if not _is_int(c) or c < 2:
            problems.append(f"num_classes (the number of {what}, an int >= 2), got {c!r}")
        counts = getattr(dm, "class_counts", None)
        try:
            n = len(counts) if counts is not None else None
        except TypeError:
            n = None
        if n is None or (_is_int(c) and n != c):
            per = "samples per class" if task is Task.CLASSIFICATION else "positives per label"
            problems.append(f"class_counts (training {per}, length num_classes={c}), got {counts!r}")
    else:
        t = getattr(dm, "num_targets", None)
        if not _is_int(t) or t < 1:
            problems.append(f"num_targets (an int >= 1), got {t!r}")
    return problems


def check_data_contract(dm: Any, name: str = "data") -> None:
    """Raise a :class:`ConfigError` listing every part of the data contract ``dm`` lacks (after setup)."""
    problems = _problems(dm)
    if problems:
        raise ConfigError(
            f"{name} ({type(dm).__module__}.{type(dm).__qualname__}) does not provide the data contract "
            f"after setup('fit'): it needs {'; '.join(problems)}. See lossbench.task.BenchDataModule"
        )
