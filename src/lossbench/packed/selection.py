"""Each replica's best epoch, chosen as its run's best checkpoint is chosen, kept in memory.

An unpacked run's checkpoint callback (:class:`~lossbench.selection.TieBreakingCheckpoint`,
``save_top_k: 1``) keeps the weights of the first validation epoch and then of every epoch that
:func:`~lossbench.selection.replaces` the best: a strictly better monitored metric, or an equal one with a
lower validation NLL; a NaN metric counts as the worst value. The run is tested with those weights.
:class:`BestWeights` makes the same choice per replica and keeps a copy of the replica's model and loss
state.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from torch import Tensor, nn

from lossbench.errors import check_choice
from lossbench.selection import TIE_BREAK, replaces


class BestWeights:
    """The best validation epoch of one replica by ``metric`` (``mode``: ``max`` or ``min``).

    Args:
        metric: the monitored validation metric (``val/acc``).
        mode: ``max`` or ``min``.
    """

    def __init__(self, metric: str, mode: str) -> None:
        self.metric, self.mode = metric, check_choice("monitor.mode", mode, ("max", "min"))
        self.best: float | None = None
        self.best_tie: float | None = None
        self.epoch: int | None = None
        self.state: dict[str, Any] | None = None

    def better(self, value: float, tie: float | None = None) -> bool:
        """Whether ``value`` (with tie-break value ``tie``) replaces the best so far."""
        return replaces(value, self.best, self.mode, tie, self.best_tie)

    def update(self, metrics: dict[str, float], epoch: int, modules: dict[str, nn.Module]) -> bool:
        """Keep ``modules``' state if ``metrics[self.metric]`` is the best so far; whether it was."""
        value = metrics[self.metric]
        tie = metrics.get(TIE_BREAK) if self.metric != TIE_BREAK else None
        if not self.better(value, tie):
            return False
        self.best = value if not math.isnan(value) else (-math.inf if self.mode == "max" else math.inf)
        self.best_tie = tie
        self.epoch = epoch
        self.state = {
            name: {k: snapshot(v) for k, v in module.state_dict().items()} for name, module in modules.items()
        }
        return True

    def restore(self, modules: dict[str, nn.Module]) -> bool:
        """Load the best epoch's state into ``modules``; False (nothing loaded) before any validation."""
        if self.state is None:
            return False
        for name, module in modules.items():
            module.load_state_dict(self.state[name])
        return True


def snapshot(value: Any) -> Any:
    """A copy of one ``state_dict`` entry that later training does not change."""
    return value.detach().clone() if isinstance(value, Tensor) else copy.deepcopy(value)
