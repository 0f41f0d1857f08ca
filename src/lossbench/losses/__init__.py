"""The loss zoo: every loss is a :class:`BenchLoss` with a task contract."""

from lossbench.losses.asymmetric import AsymmetricLoss
from lossbench.losses.base import BenchLoss, Task
from lossbench.losses.bce import BCEWithLogitsLoss
from lossbench.losses.class_balanced import ClassBalancedLoss
from lossbench.losses.cross_entropy import CrossEntropyLoss
from lossbench.losses.focal import FocalLoss, SigmoidFocalLoss
from lossbench.losses.long_tail import BalancedSoftmaxLoss, LDAMLoss, LogitAdjustedLoss
from lossbench.losses.multilabel import ZLPRLoss
from lossbench.losses.noisy import GCELoss, SCELoss
from lossbench.losses.poly import Poly1Loss
from lossbench.losses.probabilistic import (
    BetaNLLLoss,
    GaussianCRPSLoss,
    GaussianNLLLoss,
    LaplaceNLLLoss,
    PinballLoss,
)
from lossbench.losses.regression import (
    BarronLoss,
    CauchyLoss,
    HuberLoss,
    L1Loss,
    LogCoshLoss,
    QuantileLoss,
    SmoothL1Loss,
)
from lossbench.losses.square import BrierLoss, MSELoss

__all__ = [
    "AsymmetricLoss",
    "BCEWithLogitsLoss",
    "BalancedSoftmaxLoss",
    "BarronLoss",
    "BenchLoss",
    "BetaNLLLoss",
    "BrierLoss",
    "CauchyLoss",
    "ClassBalancedLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "GCELoss",
    "GaussianCRPSLoss",
    "GaussianNLLLoss",
    "HuberLoss",
    "L1Loss",
    "LDAMLoss",
    "LaplaceNLLLoss",
    "LogCoshLoss",
    "LogitAdjustedLoss",
    "MSELoss",
    "PinballLoss",
    "Poly1Loss",
    "QuantileLoss",
    "SCELoss",
    "SigmoidFocalLoss",
    "SmoothL1Loss",
    "Task",
    "ZLPRLoss",
]
