"""K replicas of one architecture as one model: each parameter and buffer stacked on a replica dimension.

Packing follows Packed-Ensembles (Laurent et al., "Packed-Ensembles for Efficient Uncertainty
Estimation", ICLR 2023) and PyTorch's model ensembling with ``torch.func.stack_module_state``: the
replicas' tensors of one name are stacked into one ``[K, ...]`` tensor, and a subclass evaluates all
replicas with one operation per layer on those stacked tensors. The stacked parameters are what autograd
differentiates; each replica's own parameters and buffers are *views* of its slices (the same memory), so
a replica's ``state_dict`` is an ordinary single-run one, loading one into a replica writes its slices,
an in-place update of a stacked buffer (BatchNorm's running statistics) is each replica's own update, and
an optimizer on a replica's parameters (their gradients set to the slices of the stacked gradients,
:meth:`PackedModel.share_grads`) updates its slices in place.

``module.to(...)`` and ``module.double()`` give every parameter and buffer new memory, which would cut the
views: :meth:`PackedModel.link` points them at the stacked tensors again (each forward does, when the
stacked tensors moved). The replicas' parameters stay the same objects, so optimizers built on them stay
valid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lossbench.packed.dropout import ReplicaDropout


class BufferList(nn.Module):
    """Tensors registered as buffers ``0``, ``1``, …: moved and cast with the module, saved in its state."""

    def __init__(self, tensors: Sequence[Tensor]) -> None:
        super().__init__()
        self.count = len(tensors)
        for i, tensor in enumerate(tensors):
            self.register_buffer(str(i), tensor)

    def __getitem__(self, i: int) -> Tensor:
        return self.get_buffer(str(i))

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(self.count))

    def __len__(self) -> int:
        return self.count


class PackedModel(nn.Module):
    """The stacked parameters and buffers of K replicas of one architecture; subclasses add the forward.

    Every tensor of a replica's ``named_parameters()`` and ``named_buffers()`` is stacked with the other
    replicas' tensors of that name. Only the head may differ (its width is the loss's ``num_outputs``): a
    tensor whose first dimension differs between replicas is zero-padded to the widest, and replica ``k``'s
    part of it is ``[k, :rows_k]`` (padded outputs are dropped by :meth:`outputs`, so their gradients are
    zero).

    Args:
        replicas: the replicas, each initialised as its own run initialises it.
        seeds: per replica, its run's seed.
        rng_states: per replica, the CPU generator state its dropout masks start from (see
            :class:`~lossbench.packed.dropout.ReplicaDropout`); ``None``: each replica's seed.
    """

    #: the replica class a subclass packs
    replica_type: type[nn.Module] = nn.Module

    def __init__(
        self,
        replicas: Sequence[nn.Module],
        seeds: Sequence[int],
        rng_states: Sequence[Tensor] | None = None,
    ) -> None:
        super().__init__()
        kind = type(self).__name__
        if not replicas:
            raise ValueError(f"a {kind} needs at least one replica")
        for replica in replicas:
            if not isinstance(replica, self.replica_type):
                raise TypeError(
                    f"{kind} packs {self.replica_type.__qualname__} replicas, not {type(replica)}"
                )
        self.replicas = nn.ModuleList(replicas)
        if rng_states is None:
            rng_states = [torch.Generator().manual_seed(seed).get_state() for seed in seeds]
        self.dropout = ReplicaDropout(rng_states, seeds)
        self.param_names = [name for name, _ in replicas[0].named_parameters()]
        self.buffer_names = [name for name, _ in replicas[0].named_buffers()]
        #: per tensor name, each replica's rows (its first dimension) where they differ, else None
        self.rows: dict[str, list[int] | None] = {}
        self.check_same_architecture()
        with torch.no_grad():
            params = [
                self.stack(name, [self.tensor_of(r, name) for r in replicas]) for name in self.param_names
            ]
            buffers = [
                self.stack(name, [self.tensor_of(r, name) for r in replicas]) for name in self.buffer_names
            ]
        self.params = nn.ParameterList([nn.Parameter(p) for p in params])
        self.stacked_buffers = BufferList(buffers)
        self.index = {name: i for i, name in enumerate(self.param_names)}
        self.buffer_index = {name: i for i, name in enumerate(self.buffer_names)}
        #: replica 0's module names by module, for a forward that walks replica 0's structure
        self.names = {module: name for name, module in replicas[0].named_modules()}
        #: per replica, its parameters in the order of :attr:`param_names` (the same objects throughout)
        self.own_params = [[r.get_parameter(name) for name in self.param_names] for r in replicas]
        #: the failed replicas, whose buffers no layer updates any more (:meth:`freeze`)
        self.frozen: set[int] = set()
        self.linked: tuple[int, ...] = ()
        self.widths: list[int] | None = None
        self.link()

    @property
    def num_replicas(self) -> int:
        return len(self.replicas)

    # --- stacking -----------------------------------------------------------------------------------
    def check_same_architecture(self) -> None:
        """Raise ``ValueError`` unless every replica has replica 0's modules, settings and tensor shapes;
        only the first dimension of a tensor may differ (the head's width, which the loss sets)."""
        kind = type(self).__name__
        models = list(self.replicas)
        for k, model in enumerate(models[1:], start=1):
            names = [n for n, _ in model.named_parameters()], [n for n, _ in model.named_buffers()]
            if names != (self.param_names, self.buffer_names):
                raise ValueError(f"replica {k} does not have replica 0's architecture ({kind}: other layers)")
        heads = set()
        for name in self.param_names + self.buffer_names:
            shapes = [tuple(self.tensor_of(m, name).shape) for m in models]
            if len(set(shapes)) == 1:
                self.rows[name] = None
                continue
            if any(len(s) == 0 for s in shapes) or len({s[1:] for s in shapes}) != 1:
                raise ValueError(
                    f"the replicas do not have replica 0's architecture: {name} has shapes "
                    f"{sorted(set(shapes))}; every replica of a {kind} needs the same model config"
                )
            self.rows[name] = [s[0] for s in shapes]
            heads.add(name.rpartition(".")[0])

        def signature(model: nn.Module) -> list[tuple[str, str, str | None]]:
            return [
                (name, type(m).__name__, None if name in heads else m.extra_repr())
                for name, m in model.named_modules()
            ]

        first = signature(models[0])
        for k, model in enumerate(models[1:], start=1):
            if signature(model) != first:
                raise ValueError(
                    f"replica {k} does not have replica 0's architecture: every replica of a {kind} needs "
                    "the same model config (only the head's width, which the loss sets, may differ)"
                )

    @staticmethod
    def tensor_of(model: nn.Module, name: str) -> Tensor:
        """``model``'s parameter or buffer ``name``."""
        owner, _, leaf = name.rpartition(".")
        return getattr(model.get_submodule(owner), leaf)

    def stack(self, name: str, tensors: Sequence[Tensor]) -> Tensor:
        """The replicas' tensors of ``name`` stacked ``[K, ...]``, zero-padded to the most rows."""
        rows = self.rows[name]
        if rows is None:
            return torch.stack([t.detach() for t in tensors])
        out = tensors[0].new_zeros(len(tensors), max(rows), *tensors[0].shape[1:])
        for k, t in enumerate(tensors):
            out[k, : rows[k]] = t.detach()
        return out

    def part(self, name: str, k: int) -> tuple[Any, ...]:
        """The index of replica ``k``'s part of the stacked tensor ``name``."""
        rows = self.rows[name]
        return (k,) if rows is None else (k, slice(0, rows[k]))

    def link(self) -> None:
        """Make each replica's parameters and buffers views of its parts of the stacked ones (again), if
        the stacked tensors moved since the last time (``to``, ``double``, ``cuda`` give them new memory)."""
        stacked = [*self.params, *self.stacked_buffers]
        first = self.params[0].data[self.part(self.param_names[0], 0)]
        # the stacked tensors' addresses, and whether replica 0's first parameter still views its part (a
        # move may give the stacked tensors back the addresses they had)
        where = (*(t.data_ptr() for t in stacked), self.own_params[0][0].data_ptr() == first.data_ptr())
        if where == self.linked and where[-1]:
            return
        for k, replica in enumerate(self.replicas):
            for name, own, param in zip(self.param_names, self.own_params[k], self.params, strict=True):
                own.data = param.data[self.part(name, k)]
            for name, buffer in zip(self.buffer_names, self.stacked_buffers, strict=True):
                owner, _, leaf = name.rpartition(".")
                setattr(replica.get_submodule(owner), leaf, buffer[self.part(name, k)])
        self.linked = where

    def param(self, name: str) -> nn.Parameter:
        """The stacked parameter ``name`` (a replica's parameter name), ``[K, ...]``."""
        return self.params[self.index[name]]

    def buffer(self, name: str) -> Tensor:
        """The stacked buffer ``name`` (a replica's buffer name), ``[K, ...]``."""
        return self.stacked_buffers[self.buffer_index[name]]

    def stacked_parameters(self) -> list[nn.Parameter]:
        """The stacked parameters, in the order of a replica's own."""
        return list(self.params)

    def slices(self) -> list[list[tuple[Any, ...]]]:
        """Per stacked parameter (:meth:`stacked_parameters`), per replica, the index of its part."""
        return [[self.part(name, k) for k in range(self.num_replicas)] for name in self.param_names]

    def share_grads(self, k: int) -> None:
        """Set replica ``k``'s parameters' gradients to its parts of the stacked gradients (views), so an
        optimizer of its own parameters reads them; a parameter whose stacked gradient is None keeps its
        own."""
        for name, own, stacked in zip(self.param_names, self.own_params[k], self.params, strict=True):
            if stacked.grad is not None:
                own.grad = stacked.grad[self.part(name, k)]

    # --- failed replicas ----------------------------------------------------------------------------
    def freeze(self, k: int) -> None:
        """Keep replica ``k``'s buffers as they are now: a failed replica is still evaluated with the
        others, but its running statistics stay those of its last step, as its stopped run's do (a layer
        with buffers updates only the :meth:`live` replicas' parts)."""
        self.frozen.add(k)

    def live(self, device: torch.device) -> Tensor:
        """``[K]``: whether each replica's buffers are still updated (not :meth:`freeze`-d)."""
        return torch.tensor([k not in self.frozen for k in range(self.num_replicas)], device=device)

    # --- evaluation ---------------------------------------------------------------------------------
    #: replica 0's module name of the final ``nn.Linear`` (whose width is the loss's ``num_outputs``)
    head_name = ""

    @property
    def output_widths(self) -> list[int]:
        """Each replica's number of outputs (its loss's ``num_outputs``; read once: the heads keep them)."""
        if self.widths is None:
            self.widths = [r.get_submodule(self.head_name).out_features for r in self.replicas]
        return self.widths

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        """Outputs ``[K, B, width]`` of inputs ``[K, B, ...]`` (replica ``k`` sees ``x[k]``), or with
        ``shared=True`` of inputs ``[B, ...]`` that every replica sees (validation and test). ``width`` is
        the widest head; replica ``k``'s own outputs are :meth:`outputs` ``(k, ...)``. Floating inputs are
        cast to the parameters' dtype (``trainer.precision=64-true`` casts the model)."""
        k = self.num_replicas
        if not shared and x.shape[0] != k:
            raise ValueError(f"inputs of shape {tuple(x.shape)} do not start with the {k} replicas")
        self.link()
        dtype = self.params[0].dtype
        if x.is_floating_point() and x.dtype != dtype:
            x = x.to(dtype)
        return self.packed_forward(x, shared)

    def packed_forward(self, x: Tensor, shared: bool) -> Tensor:
        """The replicas' outputs ``[K, B, width]`` (see :meth:`forward`)."""
        raise NotImplementedError

    def outputs(self, k: int, packed: Tensor) -> Tensor:
        """Replica ``k``'s outputs ``[B, num_outputs]`` in the packed outputs ``[K, B, width]``."""
        return packed[k, :, : self.output_widths[k]]

    def linear(self, module: nn.Linear, h: Tensor) -> Tensor:
        """Replica 0's ``module`` for every replica: ``h [K, B, in] → [K, B, out]``, one ``baddbmm``."""
        name = self.names[module]
        weight = self.param(f"{name}.weight")
        if module.bias is None:
            return torch.bmm(h, weight.transpose(1, 2))
        return torch.baddbmm(self.param(f"{name}.bias").unsqueeze(1), h, weight.transpose(1, 2))
