"""The replicas' optimizers and learning-rate schedules, stepped together as one optimizer.

Each replica keeps its run's optimizer (``optim.optimizer`` of its config) and schedule, and its optimizer
state is an ordinary single-run one (:meth:`ReplicaOptimizers.replica_state_dict`). Two ways to step them:

- :class:`SharedOptimizer`, when every replica has the same element-wise optimizer (SGD, Adam, AdamW) with
  the same settings and schedule, and no loss parameters: one optimizer of that kind on the stacked
  parameters of the packed model (:class:`~lossbench.packed.stacking.PackedModel`). An element-wise
  update is computed for each element alone, so replica ``k``'s slice is updated exactly as its run's
  optimizer updates its tensors, and its state is the ``k``-th slice of the shared state.
- :class:`ReplicaOptimizers` otherwise: one optimizer per replica on its own (view) parameters.

Either is one ``torch.optim.Optimizer`` to Lightning, so Lightning counts one optimizer step per training
step (``trainer.global_step`` as in each unpacked run), and steps only the replicas still training.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor
from torch.optim import Optimizer

from lossbench.schedulers import is_plateau, schedule_length

#: optimizers whose update of an element depends only on that element's gradient and state
ELEMENTWISE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


class ReplicaOptimizers(Optimizer):
    """K optimizers behind one ``Optimizer``: :meth:`step` steps those in :attr:`active`.

    ``param_groups`` are the replicas' own groups (the same dicts), replica by replica, so a learning-rate
    monitor sees each replica's rates. Its ``state_dict`` is the list of the replicas' state dicts; its own
    ``state`` stays empty (each replica's optimizer holds its state).

    Args:
        optimizers: the replicas' optimizers.
        before_step: called with ``k`` before replica ``k``'s optimizer steps (to hand it its gradients).
    """

    def __init__(
        self, optimizers: Sequence[Optimizer], before_step: Callable[[int], None] | None = None
    ) -> None:
        params = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
        super().__init__(params, {})
        self.optimizers = list(optimizers)
        self.param_groups = [group for opt in self.optimizers for group in opt.param_groups]
        self.active = [True] * len(self.optimizers)
        self.before_step = before_step

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for k, (optimizer, active) in enumerate(zip(self.optimizers, self.active, strict=True)):
            if active:
                if self.before_step is not None:
                    self.before_step(k)
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

    def replica_state_dict(self, k: int) -> dict[str, Any]:
        """Replica ``k``'s optimizer state, as its run's optimizer holds it: a copy (a checkpoint written
        in the background while training goes on keeps this step's moments, not later ones)."""
        return copy.deepcopy(self.optimizers[k].state_dict())

    def load_replica_state_dict(self, k: int, state: dict[str, Any]) -> None:
        """Continue replica ``k`` from its run's optimizer state."""
        self.optimizers[k].load_state_dict(state)


class SharedOptimizer(Optimizer):
    """One element-wise optimizer on stacked parameters ``[K, ...]``, each replica's slice its own.

    A replica that stops (:attr:`active` false) keeps its weights: its slices are put back after each step.

    Args:
        optimizer: the optimizer on the stacked parameters (built by the replicas' shared factory).
        slices: per stacked parameter, per replica, the index of its slice (``(k, slice(0, out))``).
    """

    def __init__(self, optimizer: Optimizer, slices: Sequence[Sequence[tuple[Any, ...]]]) -> None:
        if not isinstance(optimizer, ELEMENTWISE):
            raise TypeError(f"{type(optimizer).__name__} is not element-wise: it cannot be shared")
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        super().__init__(self.params, {})
        self.optimizer, self.slices = optimizer, [list(s) for s in slices]
        self.param_groups = optimizer.param_groups
        self.active = [True] * len(self.slices[0])
        self.kept: dict[int, list[Tensor]] = {}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for k, active in enumerate(self.active):
            if not active and k not in self.kept:
                self.kept[k] = [
                    p.detach()[s[k]].clone() for p, s in zip(self.params, self.slices, strict=True)
                ]
        self.optimizer.step()
        with torch.no_grad():
            for k, kept in self.kept.items():
                for p, s, value in zip(self.params, self.slices, kept, strict=True):
                    p[s[k]] = value
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    def replica_state_dict(self, k: int) -> dict[str, Any]:
        """Replica ``k``'s optimizer state, as its run's optimizer holds it: each state tensor of a
        parameter's shape sliced to replica ``k``'s part, the others (``step``) as they are."""
        shared = self.optimizer.state_dict()
        state = {}
        for i, entries in shared["state"].items():
            param, index = self.params[i], self.slices[i][k]
            state[i] = {
                name: value[index].clone() if is_per_element(value, param) else clone(value)
                for name, value in entries.items()
            }
        return {"state": state, "param_groups": [dict(g) for g in shared["param_groups"]]}

    def load_replica_state_dict(self, k: int, state: dict[str, Any]) -> None:
        """Continue replica ``k`` from its run's optimizer state (the shared ``step`` and settings come
        from the last replica loaded: every replica of a group continues from the same step)."""
        for i, entries in state["state"].items():
            param = self.params[int(i)]
            own = self.optimizer.state[param]
            for name, value in entries.items():
                if isinstance(value, Tensor) and value.dim() > 0:
                    if name not in own:
                        own[name] = torch.zeros_like(param)
                    own[name][self.slices[int(i)][k]] = value
                else:
                    own[name] = clone(value)
        for group, saved in zip(self.optimizer.param_groups, state["param_groups"], strict=True):
            group.update({key: value for key, value in saved.items() if key != "params"})


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Torch's default dtype set to ``dtype`` inside: the packed module steps its optimizers inside
    Lightning's precision context (float64 under ``64-true``), its runs outside it, and optimizers make
    their scalar state (Adam's ``step``, NAdam's ``mu_product``) of the default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def is_per_element(value: Any, param: Tensor) -> bool:
    """Whether an optimizer state entry holds one value per element of ``param``."""
    return isinstance(value, Tensor) and value.shape == param.shape


def clone(value: Any) -> Any:
    return value.clone() if isinstance(value, Tensor) else value


@dataclass
class Schedule:
    """A learning-rate scheduler, the replicas whose rates it sets and when it steps (``step``/``epoch``)."""

    scheduler: Any
    replicas: list[int]
    interval: str


def schedule_of(
    replica: Any, optimizer: Optimizer, stepping_batches: int, replicas: list[int]
) -> Schedule | None:
    """The schedule of ``replica``'s run (its scheduler factory on ``optimizer``), or None."""
    factory = replica.scheduler
    if factory is None:
        return None
    length = schedule_length(factory, replica.scheduler_interval, stepping_batches)
    return Schedule(factory(optimizer, **length), replicas, replica.scheduler_interval)


def shareable(replicas: Sequence[Any]) -> bool:
    """Whether the replicas may share one optimizer: the same ``optim`` config and no loss parameters."""
    first = OmegaConf.to_container(replicas[0].cfg.optim, resolve=True)
    return all(
        not list(r.loss.parameters()) and OmegaConf.to_container(r.cfg.optim, resolve=True) == first
        for r in replicas
    )


def build_optimizers(
    replicas: Sequence[Any], model: Any, stepping_batches: int
) -> tuple[Optimizer, list[Schedule]]:
    """The replicas' optimizers as one (a :class:`SharedOptimizer` on ``model``'s stacked parameters where
    they allow it, else :class:`ReplicaOptimizers`) and their schedules."""
    everyone = list(range(len(replicas)))
    if shareable(replicas):
        shared = replicas[0].optimizer(model.stacked_parameters())
        schedule = schedule_of(replicas[0], shared, stepping_batches, everyone)
        if isinstance(shared, ELEMENTWISE) and (schedule is None or not is_plateau(schedule.scheduler)):
            return SharedOptimizer(shared, model.slices()), [schedule] if schedule else []
    optimizers = [r.optimizer(r.parameters()) for r in replicas]
    schedules = [
        schedule_of(r, opt, stepping_batches, [k])
        for k, (r, opt) in enumerate(zip(replicas, optimizers, strict=True))
    ]
    return ReplicaOptimizers(optimizers, before_step=model.share_grads), [s for s in schedules if s]


def clip_gradients(model: Any, replica: Any, k: int) -> None:
    """Clip replica ``k``'s gradients as its run's Trainer would: by the norm (or the values) of its own
    gradients alone (``model``: the packed model, whose stacked gradients it shares with the replica)."""
    if not replica.gradient_clip_val:
        return
    model.share_grads(k)
    params = [p for p in replica.parameters() if p.grad is not None]
    if replica.gradient_clip_algorithm == "value":
        torch.nn.utils.clip_grad_value_(params, replica.gradient_clip_val)
    else:
        torch.nn.utils.clip_grad_norm_(params, replica.gradient_clip_val)
