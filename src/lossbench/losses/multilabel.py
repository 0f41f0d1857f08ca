"""Losses defined for multi-label classification only."""

from __future__ import annotations

import torch
from torch import Tensor

from lossbench.losses.base import BenchLoss, MultilabelOutputs, Task
from lossbench.losses.targets import positive_mask


class ZLPRLoss(MultilabelOutputs, BenchLoss):
    r"""Zero-bounded log-sum-exp & pairwise rank-based loss (ZLPR).

    Su et al., "ZLPR: A Novel Loss for Multi-label Classification", arXiv:2208.02955, 2022.

    .. math::
        \ell(s, t) = \log\Big(1 + \sum_{i \in \Omega_{neg}} e^{s_i}\Big)
        + \log\Big(1 + \sum_{j \in \Omega_{pos}} e^{-s_j}\Big)

    with ``Ω_pos`` / ``Ω_neg`` the labels with ``t = 1`` / ``t = 0`` of the multi-hot target ``[N, L]``.
    It extends softmax cross-entropy to several positives: every positive score is pushed above every
    negative one and above the threshold 0, every negative below it. Each term is a ``logsumexp`` over the
    masked scores and a zero column (the ``1 +``), so the loss is finite for any scores, including rows
    without a positive or without a negative (a term over an empty set is ``log 1 = 0``). Multi-label
    only; label predictions are ``s > 0`` (the loss's threshold) and label probabilities ``σ(s)``, which
    exceed 0.5 exactly there.

    Args:
        reduction: ``mean`` (over samples), ``sum`` or ``none``.
    """

    tasks = frozenset({Task.MULTILABEL})

    def per_sample(self, outputs: Tensor, target: Tensor) -> Tensor:
        pos = positive_mask(target, outputs)
        zero = outputs.new_zeros(outputs.shape[:-1] + (1,))
        neg_scores = torch.cat([outputs.masked_fill(pos, -torch.inf), zero], dim=-1)
        pos_scores = torch.cat([outputs.neg().masked_fill_(~pos, -torch.inf), zero], dim=-1)
        return neg_scores.logsumexp(dim=-1) + pos_scores.logsumexp(dim=-1)
