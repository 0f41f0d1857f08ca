"""Which validation epoch is a run's best: the monitored metric, and validation NLL to break its ties.

On a small validation split the monitored metric is often flat (the accuracy of 60 samples moves in steps of
1/60), so "strictly better" alone keeps the first of several equal epochs, often epoch 0 or 1: an
undertrained model whose calibration is then compared. :func:`replaces` keeps an epoch that equals the best
on the monitored metric when its validation NLL is strictly lower (Lightning's ``ModelCheckpoint`` and the
packed replicas' :class:`~lossbench.packed.selection.BestWeights` choose through it, so both pick the same
epoch). Without an NLL (regression by MSE) the rule is ModelCheckpoint's own.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lossbench.checkpointing import RunDirCheckpoint

#: the metric that breaks ties of the monitored one (lower is better)
TIE_BREAK = "val/nll"


def replaces(value: float, best: float | None, mode: str, tie: float | None, best_tie: float | None) -> bool:
    """Whether an epoch with monitored ``value`` (and tie-break value ``tie``) replaces the best so far.

    Strictly better replaces; equal replaces when both tie values are finite and ``tie < best_tie``; the
    first epoch always does. A NaN monitored value is the worst value.
    """
    if best is None:
        return True
    worst = -math.inf if mode == "max" else math.inf
    value = worst if math.isnan(value) else value
    if value != best:
        return value > best if mode == "max" else value < best
    finite = tie is not None and best_tie is not None and math.isfinite(tie) and math.isfinite(best_tie)
    return finite and tie < best_tie


class TieBreakingCheckpoint(RunDirCheckpoint):
    """``ModelCheckpoint`` (read back in a moved run dir as :class:`~lossbench.checkpointing.RunDirCheckpoint`
    reads it) whose ``save_top_k=1`` choice is :func:`replaces`: an epoch equal to the best on
    the monitored metric replaces it when its ``tie_break`` metric (validation NLL) is lower.

    Args:
        tie_break: the callback metric that breaks ties (lower is better); ``None``: ModelCheckpoint's rule.
        **kwargs: :class:`~lightning.pytorch.callbacks.ModelCheckpoint`'s arguments.
    """

    def __init__(self, *args: Any, tie_break: str | None = TIE_BREAK, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tie_break = tie_break
        #: the tie-break value of the best epoch so far
        self.best_tie: float | None = None

    def tie_value(self, trainer: Any) -> float | None:
        value = trainer.callback_metrics.get(self.tie_break) if self.tie_break else None
        return None if value is None or self.tie_break == self.monitor else float(value)

    def check_monitor_top_k(self, trainer: Any, current: torch.Tensor | None = None) -> bool:
        better = super().check_monitor_top_k(trainer, current)
        tie = self.tie_value(trainer)
        if not better and current is not None and self.save_top_k == 1 and self.best_k_models:
            best = float(self.best_k_models[self.kth_best_model_path])
            tied = replaces(float(current), best, self.mode, tie, self.best_tie)
            better = trainer.strategy.reduce_boolean_decision(tied)
        if better:
            self.best_tie = tie
        return better

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_tie": self.best_tie}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_tie = state_dict.get("best_tie")
