"""Losses for long-tailed (class-imbalanced) data, driven by the training split's class counts.

Each of these sets ``needs_class_counts``: the trainer passes ``class_counts=[n_0, ..., n_{C-1}]`` counted
on the training split. Built without counts (e.g. in a unit test or a plot), every class counts the same
and each loss falls back to its balanced special case. The class-balanced loss of Cui et al. 2019 is in
:mod:`lossbench.losses.class_balanced`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossbench.errors import ConfigError, check_range
from lossbench.losses.base import BenchLoss, Task, upcast


def class_count_tensor(class_counts: Sequence[int] | None) -> Tensor | None:
    """Validate per-class sample counts (non-negative, at least one class) and return them as float64."""
    if class_counts is None:
        return None
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() < 1 or bool((counts < 0).any()):
        raise ConfigError(f"class_counts={list(class_counts)!r} is not valid: expected C counts ≥ 0")
    return counts


def effective_number_weights(counts: Tensor, beta: float) -> Tensor:
    r"""Class-balanced weights of Cui et al. 2019: ``w_c ∝ (1 - β) / (1 - β^{n_c})``, normalised to sum to C.

    ``(1 - β^n)/(1 - β)`` is the effective number of samples of a class with ``n`` samples. Classes with no
    training sample are treated as having one. ``β = 0`` gives equal weights (all ones).
    """
    n = counts.to(torch.float64).clamp_min(1.0)
    w = (1.0 - beta) / (-torch.expm1(n * torch.log(torch.tensor(beta, dtype=torch.float64))))
    w = torch.ones_like(n) if beta == 0.0 else w
    return w / w.sum() * n.numel()


class _ClassCountLoss(BenchLoss):
    """Base of losses that receive the training split's class counts."""

    needs_class_counts = True

    def __init__(self, class_counts: Sequence[int] | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.class_counts = class_count_tensor(class_counts)

    def check_task(self, task: Task, num_classes: int | None = None) -> None:
        super().check_task(task, num_classes)
        if (
            self.class_counts is not None
            and num_classes is not None
            and len(self.class_counts) != num_classes
        ):
            raise ConfigError(
                f"class_counts has {len(self.class_counts)} entries "
                f"but the data set has {num_classes} classes"
            )


class LDAMLoss(_ClassCountLoss):
    r"""Label-distribution-aware margin loss, with optional deferred re-weighting (DRW).

    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.

    .. math::
        \ell(z, y) = w_y\,\mathrm{CE}\big(s\,(z - \Delta_y e_y),\, y\big),\qquad
        \Delta_c = \frac{\text{max\_m}}{\max_k n_k^{-1/4}}\, n_c^{-1/4}

    Rare classes get larger margins. DRW: from epoch ``drw_epoch`` on, ``w`` are the class-balanced
    weights (Cui et al. 2019) with ``β = drw_beta`` and ``mean`` divides by the summed weights (as
    :func:`torch.nn.functional.cross_entropy` does); before that (or with ``drw_epoch=None``) ``w = 1``.
    The paper scales normalised (cosine) logits by ``s = 30``; with an unnormalised linear head a smaller
    ``s`` may suit. Probabilities ``softmax(s z)`` (the margin is a training device); predictions argmax.

    Args:
        max_m: largest margin, ``≥ 0``.
        s: logit scale ``s > 0``.
        drw_epoch: first epoch (0-based) of deferred re-weighting, ``≥ 0``, or ``None`` (off).
        drw_beta: ``β ∈ [0, 1)`` of the DRW class-balanced weights.
        class_counts: training samples per class (passed in by the trainer).
        reduction: ``mean``, ``sum`` or ``none``.
    """

    optional_state = ("drw_state",)

    def __init__(
        self,
        max_m: float = 0.5,
        s: float = 30.0,
        drw_epoch: int | None = None,
        drw_beta: float = 0.9999,
        class_counts: Sequence[int] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction)
        self.max_m = float(check_range("max_m", max_m, 0.0))
        self.s = float(check_range("s", s, 0.0, low_inclusive=False))
        if isinstance(drw_epoch, float) and not drw_epoch.is_integer():
            raise ConfigError(f"drw_epoch={drw_epoch!r} is not a whole epoch: give an integer")
        self.drw_epoch = None if drw_epoch is None else int(check_range("drw_epoch", drw_epoch, 0))
        self.drw_beta = float(check_range("drw_beta", drw_beta, 0.0, 1.0, high_inclusive=False))
        margins = drw = None
        if self.class_counts is not None:
            inv = self.class_counts.clamp_min(1.0).pow(-0.25)
            margins = inv * (self.max_m / inv.max())
            drw = effective_number_weights(self.class_counts, self.drw_beta)
        self.register_buffer("margins", margins)
        self.register_buffer("drw_weight", drw)
        # whether the deferred re-weighting is on: a bool read each step, and a buffer in the checkpoint,
        # so a checkpoint tested later (lossbench-eval) weighs its test loss as its epoch did
        self.drw_active = False
        self.register_buffer("drw_state", torch.tensor(False))
        self.register_load_state_dict_pre_hook(_default_drw_state)
        self.register_load_state_dict_post_hook(_read_drw_state)

    def on_train_epoch_start(self, epoch: int, max_epochs: int | None) -> None:
        self.drw_active = self.drw_epoch is not None and epoch >= self.drw_epoch
        self.drw_state.fill_(self.drw_active)

    def _weight(self, outputs: Tensor) -> Tensor | None:
        if not self.drw_active:
            return None
        if self.drw_weight is None:  # no counts: DRW weights are uniform
            return torch.ones(outputs.shape[-1], dtype=outputs.dtype, device=outputs.device)
        return self.drw_weight.to(outputs.dtype)

    def _scaled_margin_logits(self, outputs: Tensor, target: Tensor) -> Tensor:
        idx = target.long().unsqueeze(-1)
        if self.margins is None:
            m = torch.full_like(idx, self.max_m, dtype=outputs.dtype)
        else:
            m = self.margins.to(outputs.dtype)[target.long()].unsqueeze(-1)
        return outputs.scatter_add(-1, idx, -m).mul_(self.s)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        logits = self._scaled_margin_logits(outputs, target)
        return F.cross_entropy(logits, target.long(), weight=self._weight(outputs), reduction="none")

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        self.check_target(target)
        outputs = upcast(outputs)
        loss = self.per_sample(outputs, target)
        weight = self._weight(outputs)
        return self.reduce(loss, None if weight is None else weight[target.long()])

    def probabilities(self, outputs: Tensor) -> Tensor:
        return (outputs.float() * self.s).softmax(dim=-1)

    def extra_repr(self) -> str:
        return f"max_m={self.max_m}, s={self.s}, drw_epoch={self.drw_epoch}, {super().extra_repr()}"


def _default_drw_state(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """A checkpoint written before :class:`LDAMLoss` kept ``drw_state`` loads with re-weighting off."""
    state_dict.setdefault(f"{prefix}drw_state", torch.tensor(False))


def _read_drw_state(module: nn.Module, incompatible: Any) -> None:
    """After a checkpoint loads, the step's bool follows its buffer (one read, not one per step)."""
    module.drw_active = bool(module.drw_state)


class LogitAdjustedLoss(_ClassCountLoss):
    r"""Logit-adjusted softmax cross-entropy.

    Menon et al., "Long-Tail Learning via Logit Adjustment", ICLR 2021.

    .. math::
        \ell(z, y) = -\log \frac{e^{z_y + \tau \log \pi_y}}{\sum_c e^{z_c + \tau \log \pi_c}},
        \qquad \pi_c = n_c / \textstyle\sum_k n_k

    The model's own logits ``z`` then estimate the *balanced* posterior: predictions are ``argmax z`` and
    probabilities ``softmax(z)``. ``τ = 0`` is cross-entropy; ``τ = 1`` is Fisher-consistent for the
    balanced error. Classes without training samples are counted as one.

    Args:
        tau: temperature ``τ ≥ 0``.
        class_counts: training samples per class (passed in by the trainer).
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(
        self, tau: float = 1.0, class_counts: Sequence[int] | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction)
        self.tau = float(check_range("tau", tau, 0.0))
        adjust = None
        if self.class_counts is not None:
            n = self.class_counts.clamp_min(1.0)
            adjust = self.tau * torch.log(n / n.sum())
        self.register_buffer("adjustment", adjust)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        logits = outputs if self.adjustment is None else outputs + self.adjustment.to(outputs.dtype)
        return F.cross_entropy(logits, target.long(), reduction="none")

    def extra_repr(self) -> str:
        return f"tau={self.tau}, {super().extra_repr()}"


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    r"""Balanced softmax cross-entropy.

    Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020.

    .. math::
        \ell(z, y) = -\log \frac{n_y e^{z_y}}{\sum_c n_c e^{z_c}}

    i.e. the logit-adjusted loss with ``τ = 1`` (shifting all logits by ``log Σn`` changes nothing).
    Predictions ``argmax z``, probabilities ``softmax(z)`` (the balanced posterior).

    Args:
        class_counts: training samples per class (passed in by the trainer).
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(self, class_counts: Sequence[int] | None = None, reduction: str = "mean") -> None:
        super().__init__(tau=1.0, class_counts=class_counts, reduction=reduction)

    def extra_repr(self) -> str:
        return BenchLoss.extra_repr(self)
