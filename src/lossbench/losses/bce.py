"""Sigmoid binary cross-entropy, one-vs-rest for more than two classes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.errors import ConfigError
from lossbench.losses.base import BenchLoss, Task, one_hot_like


class BCEWithLogitsLoss(BenchLoss):
    r"""Binary cross-entropy on sigmoid outputs; one-vs-rest over C classes.

    .. math::
        \ell(z, y) = -\sum_{c} \big[p_c\, t_c \log\sigma(z_c) + (1-t_c)\log(1-\sigma(z_c))\big],
        \qquad t = \mathrm{onehot}(y)

    On a binary data set the model has a single logit (``t = y``); with C > 2 classes it has C logits,
    each a binary "this class vs the rest" problem, and the per-sample loss sums over them. Class
    probabilities for the metrics are the sigmoids normalised to sum to one (binary: ``[1-σ, σ]``);
    predictions are the largest logit (binary: ``z > 0``).

    Args:
        pos_weight: weight ``p_c`` of the positive term, a scalar or one per class.
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    def __init__(self, pos_weight: float | Sequence[float] | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float)
        if pw is not None and bool((pw <= 0).any()):
            raise ConfigError(f"pos_weight={pos_weight!r} is out of range: expected values > 0")
        self.register_buffer("pos_weight", pw)

    def num_outputs(self, task: Task, num_classes: int | None, num_targets: int = 1) -> int:
        return 1 if num_classes == 2 else super().num_outputs(task, num_classes, num_targets)

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(outputs.dtype)
        if outputs.shape[-1] == 1:
            t = target.to(outputs.dtype).unsqueeze(-1)
        else:
            t = one_hot_like(target, outputs)
        loss = F.binary_cross_entropy_with_logits(outputs, t, pos_weight=pos_weight, reduction="none")
        return loss.sum(dim=-1)

    def probabilities(self, outputs: Tensor) -> Tensor:
        p = outputs.float().sigmoid()
        if p.shape[-1] == 1:
            return torch.cat([1 - p, p], dim=-1)
        return p / p.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)

    def predictions(self, outputs: Tensor) -> Tensor:
        if outputs.shape[-1] == 1:
            return (outputs[..., 0] > 0).long()
        return outputs.argmax(dim=-1)
