"""One optimizer and learning-rate schedule per replica, stepped together as one optimizer.

Each replica's optimizer is its run's own (``optim.optimizer`` of its config, built on its own model's and
loss's parameters in its run's order), so learning rates, weight decay and schedules may differ between
replicas and each replica's optimizer state is an ordinary single-run one. :class:`ReplicaOptimizers`
presents them to Lightning as one ``torch.optim.Optimizer``, so Lightning counts one optimizer step per
training step (``trainer.global_step`` as in each unpacked run), and steps only the replicas still training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer


class ReplicaOptimizers(Optimizer):
    """K optimizers behind one ``Optimizer``: :meth:`step` steps those in :attr:`active`.

    ``param_groups`` are the replicas' own groups (the same dicts), replica by replica, so a learning-rate
    monitor sees each replica's rates. Its ``state_dict`` is the list of the replicas' state dicts; its own
    ``state`` stays empty (each replica's optimizer holds its state, and ``load_state_dict`` puts each
    replica's back where its parameters are).
    """

    def __init__(self, optimizers: Sequence[Optimizer]) -> None:
        params = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
        super().__init__(params, {})
        self.optimizers = list(optimizers)
        self.param_groups = [group for opt in self.optimizers for group in opt.param_groups]
        self.active = [True] * len(self.optimizers)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for optimizer, active in zip(self.optimizers, self.active, strict=True):
            if active:
                optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"replicas": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict["replicas"]
        if len(states) != len(self.optimizers):
            raise ValueError(f"{len(states)} optimizer states for {len(self.optimizers)} replicas")
        for optimizer, state in zip(self.optimizers, states, strict=True):
            optimizer.load_state_dict(state)


def is_plateau(scheduler: Any) -> bool:
    """Whether ``scheduler`` follows a validation metric (``ReduceLROnPlateau``)."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
