"""The loss zoo: every loss is a :class:`BenchLoss` with a task contract."""

from lossbench.losses.base import BenchLoss, Task
from lossbench.losses.bce import BCEWithLogitsLoss
from lossbench.losses.cross_entropy import CrossEntropyLoss
from lossbench.losses.focal import FocalLoss
from lossbench.losses.square import HuberLoss, MSELoss

__all__ = ["BCEWithLogitsLoss", "BenchLoss", "CrossEntropyLoss", "FocalLoss", "HuberLoss", "MSELoss", "Task"]
