"""Targets as losses read them: class indices, one-hot rows, multi-hot label rows and regression columns,
and the per-class weights a loss takes (checked before training)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lossbench.errors import ConfigError


def check_multi_hot(name: str, target: Tensor) -> None:
    """Raise ``ValueError`` unless the ``[N, L]`` ``target`` holds only 0 and 1 (bool passes unchecked).

    Values are checked on the CPU only: on an accelerator the check would cost a host-device sync per step,
    and the data modules check their multi-label targets once, before training."""
    if target.dtype is torch.bool or target.device.type != "cpu":
        return
    if target.is_complex() or bool(((target != 0) & (target != 1)).any()):
        raise ValueError(
            f"{name} got a multi-label target [N, L] with values other than 0 and 1: multi-label targets "
            "are multi-hot 0/1 vectors (pass (target > 0.5).float() for probabilities or soft labels)"
        )


def is_multi_hot(target: Tensor) -> bool:
    """Multi-label targets are ``[N, L]``; classification targets are always class indices ``[N]``."""
    return target.ndim == 2


def check_label_shape(target: Tensor, outputs: Tensor) -> None:
    """A multi-hot ``target`` must have the shape of the ``outputs`` (one logit per label)."""
    if target.shape != outputs.shape:
        raise ValueError(
            f"multi-label outputs of shape {list(outputs.shape)} and targets of shape {list(target.shape)} "
            "do not match: the model needs one output per label"
        )


def binary_targets(target: Tensor, outputs: Tensor) -> Tensor:
    """0/1 targets shaped like ``outputs``: a multi-hot ``[N, L]`` target itself, one-hot for C logits,
    ``y`` itself for a single logit."""
    if is_multi_hot(target):
        check_label_shape(target, outputs)
        return target.to(outputs.dtype)
    if outputs.shape[-1] == 1:
        return target.to(outputs.dtype).unsqueeze(-1)
    return one_hot_like(target, outputs)


def positive_mask(target: Tensor, outputs: Tensor) -> Tensor | None:
    """The elementwise view of a sigmoid loss: a bool mask of the positive logits, shaped like ``outputs``,
    for multi-hot ``[N, L]`` targets and for binary ``[N]`` targets with a single logit; ``None`` for class
    indices over C > 1 logits (the one-vs-rest view, where the class index is used directly)."""
    if is_multi_hot(target):
        check_label_shape(target, outputs)
        return target.bool()
    if outputs.shape[-1] == 1:
        return target.bool().unsqueeze(-1)
    return None


def one_hot_like(target: Tensor, outputs: Tensor) -> Tensor:
    """One-hot encode integer ``target`` to the shape and dtype of ``outputs`` ``[N, C]``."""
    onehot = torch.zeros_like(outputs)
    return onehot.scatter_(-1, target.long().unsqueeze(-1), 1.0)


def as_columns(outputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Regression outputs ``[N, T]`` (a 1-D ``[N]`` becomes ``[N, 1]``) and the target cast to match them."""
    if outputs.ndim == 1:
        outputs = outputs.unsqueeze(-1)
    same_rows = target.shape[0] == outputs.shape[0] if target.ndim else False
    if target.numel() != outputs.numel() or not same_rows or target.ndim > 2:  # [T, N] would misalign
        raise ValueError(
            f"regression outputs of shape {list(outputs.shape)} and targets of shape {list(target.shape)} "
            "do not match: the model needs one output per target column"
        )
    return outputs, target.to(outputs.dtype).reshape(outputs.shape)


def is_class_target(target: Tensor) -> bool:
    """Integer targets are class indices (classification); float targets are regression values."""
    return not (target.is_floating_point() or target.is_complex())


def checked_weights(
    name: str, values: float | Sequence[float] | None, *, positive: bool = False
) -> Tensor | None:
    """``values`` (a scalar or one per class) as a float64 tensor, each finite and ``≥ 0`` (``positive``:
    ``> 0``), not all zero: a NaN, infinite, negative or all-zero weight makes every loss value NaN or
    meaningless; ``None`` stays ``None``."""
    if values is None:
        return None
    try:
        w = torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(
            f"loss.{name}={values!r} has the wrong type: expected a number or a list of numbers"
        ) from None
    low = "> 0" if positive else "≥ 0, not all 0"
    bad = ~torch.isfinite(w) | ((w <= 0) if positive else (w < 0))
    if w.ndim > 1 or bool(bad.any()) or bool((w == 0).all()):
        raise ConfigError(f"loss.{name}={values!r} is out of range: expected finite values {low}")
    return w
