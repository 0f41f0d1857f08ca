"""K replicas of :class:`lossbench.models.mlp.MLP` evaluated together with batched matrix products.

Packing follows Packed-Ensembles (Laurent et al., "Packed-Ensembles for Efficient Uncertainty
Estimation", ICLR 2023) and PyTorch's model ensembling with ``torch.func.stack_module_state``: the
replicas' weights are stacked on a leading replica dimension and each layer is one ``torch.baddbmm`` over
all replicas. The stacked tensors (:attr:`PackedMLP.weights`, :attr:`PackedMLP.biases`) are the
parameters that autograd differentiates; each replica's ``nn.Linear`` keeps parameters that are views of
its slice of them (the same memory), so a replica's ``state_dict`` is an ordinary single-run one, loading
one into a replica writes its slice, and an optimizer built on a replica's parameters (whose gradients are
set to the slices of the stacked gradients, :meth:`PackedMLP.share_grads`) updates its slice in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lossbench.models.mlp import MLP
from lossbench.packed.dropout import ReplicaDropout


class PackedMLP(nn.Module):
    """K :class:`~lossbench.models.mlp.MLP` replicas of one architecture, evaluated as one model.

    Args:
        replicas: the replicas, each initialised as its own run initialises it (the same architecture:
            layer widths and dropout). Their ``nn.Linear`` parameters become views of the stacked ones.
        seeds: per replica, its run's seed.
        rng_states: per replica, the CPU generator state its dropout masks start from (see
            :class:`~lossbench.packed.dropout.ReplicaDropout`); ``None``: each replica's seed.
    """

    def __init__(
        self,
        replicas: Sequence[nn.Module],
        seeds: Sequence[int],
        rng_states: Sequence[Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not replicas:
            raise ValueError("a packed MLP needs at least one replica")
        for replica in replicas:
            if not isinstance(replica, MLP):
                raise TypeError(f"PackedMLP packs lossbench.models.mlp.MLP replicas, not {type(replica)}")
        self.replicas = nn.ModuleList(replicas)
        self.check_same_architecture()
        if rng_states is None:
            rng_states = [torch.Generator().manual_seed(seed).get_state() for seed in seeds]
        self.dropout = ReplicaDropout(rng_states, seeds)
        #: per ``nn.Linear`` of the stack: its index in ``net``
        self.linear_indices = [i for i, m in enumerate(self.layers(0)) if isinstance(m, nn.Linear)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for index in self.linear_indices:
            weight, bias = self.stack(index)
            self.weights.append(weight)
            self.biases.append(bias)

    @property
    def num_replicas(self) -> int:
        return len(self.replicas)

    def layers(self, k: int = 0) -> nn.Sequential:
        """Replica ``k``'s ``Flatten → (Linear → ReLU → Dropout)* → Linear`` stack."""
        return self.replicas[k].net

    def check_same_architecture(self) -> None:
        """Raise ``ValueError`` unless every replica has the first one's layers, shapes and dropout; only
        the width of the head (which the loss sets) may differ."""

        def signature(net: nn.Sequential) -> list[tuple]:
            shapes = [[tuple(p.shape) for p in m.parameters(recurse=False)] for m in net]
            shapes[-1] = [shape[1:] for shape in shapes[-1]]  # the head's input width only
            return [(type(m).__name__, s, getattr(m, "p", None)) for m, s in zip(net, shapes, strict=True)]

        first = signature(self.layers(0))
        for k in range(1, self.num_replicas):
            if signature(self.layers(k)) != first:
                raise ValueError(
                    f"replica {k} does not have replica 0's architecture: every replica of a packed MLP "
                    "needs the same model config (hidden_dims, dropout)"
                )

    def stack(self, index: int) -> tuple[nn.Parameter, nn.Parameter]:
        """Layer ``index``'s weights ``[K, out, in]`` and biases ``[K, out]`` as new parameters, each
        replica's ``nn.Linear`` left with views of its slice; a head narrower than the widest is padded
        with zero rows (outputs that :meth:`outputs` drops, whose gradients are zero)."""
        linears = [self.layers(k)[index] for k in range(self.num_replicas)]
        width = max(m.out_features for m in linears)
        with torch.no_grad():
            weight = torch.zeros(
                self.num_replicas, width, linears[0].in_features, dtype=linears[0].weight.dtype
            )
            bias = torch.zeros(self.num_replicas, width, dtype=linears[0].bias.dtype)
            for k, m in enumerate(linears):
                weight[k, : m.out_features] = m.weight
                bias[k, : m.out_features] = m.bias
        weight, bias = nn.Parameter(weight), nn.Parameter(bias)
        for k, m in enumerate(linears):
            m.weight = nn.Parameter(weight.data[k, : m.out_features])
            m.bias = nn.Parameter(bias.data[k, : m.out_features])
        return weight, bias

    def stacked(self, index: int) -> tuple[Tensor, Tensor]:
        """The stacked weights ``[K, out, in]`` and biases ``[K, out]`` of layer ``index`` of ``net``."""
        position = self.linear_indices.index(index)
        return self.weights[position], self.biases[position]

    def share_grads(self, k: int) -> None:
        """Set replica ``k``'s parameters' gradients to its slices of the stacked gradients (views), so an
        optimizer of its own parameters reads them; a parameter whose stacked gradient is None keeps its
        own."""
        for position, index in enumerate(self.linear_indices):
            linear = self.layers(k)[index]
            pairs = ((linear.weight, self.weights[position]), (linear.bias, self.biases[position]))
            for own, stacked in pairs:
                if stacked.grad is not None:
                    own.grad = stacked.grad[k, : linear.out_features]

    @property
    def output_widths(self) -> list[int]:
        """Each replica's number of outputs (its loss's ``num_outputs``)."""
        return [self.layers(k)[-1].out_features for k in range(self.num_replicas)]

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        """Outputs ``[K, B, width]`` of inputs ``[K, B, ...]`` (replica ``k`` sees ``x[k]``), or with
        ``shared=True`` of inputs ``[B, ...]`` that every replica sees (validation and test). ``width`` is
        the widest head; replica ``k``'s own outputs are :meth:`outputs` ``(k, ...)``."""
        k = self.num_replicas
        if not shared and x.shape[0] != k:
            raise ValueError(f"inputs of shape {tuple(x.shape)} do not start with the {k} replicas")
        h = x.unsqueeze(0).expand(k, *x.shape) if shared else x
        h = h.reshape(k, h.shape[1], -1)  # nn.Flatten of each replica's batch
        position = 0
        for layer in self.layers(0):
            if isinstance(layer, nn.Linear):
                weight, bias = self.weights[position], self.biases[position]
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
                position += 1
            elif isinstance(layer, nn.ReLU):
                h = torch.relu(h)
            elif isinstance(layer, nn.Dropout):
                h = self.dropout(h, layer.p)
            elif not isinstance(layer, nn.Flatten):
                raise TypeError(f"PackedMLP cannot pack a {type(layer).__name__} layer")
        return h

    def outputs(self, k: int, packed: Tensor) -> Tensor:
        """Replica ``k``'s outputs ``[B, num_outputs]`` in the packed outputs ``[K, B, width]``."""
        return packed[k, :, : self.layers(k)[-1].out_features]

    def replica_forward(self, k: int, x: Tensor) -> Tensor:
        """Replica ``k`` alone, as its unpacked model computes it (for checks)."""
        return self.replicas[k](x)

    def stacked_parameters(self) -> list[nn.Parameter]:
        """The stacked parameters in the order of a replica's own (``weight``, ``bias`` layer by layer)."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def slices(self) -> list[list[tuple[Any, ...]]]:
        """Per stacked parameter (:meth:`stacked_parameters`), per replica, the index of its slice."""
        out = []
        for index in self.linear_indices:
            rows = [(k, slice(0, self.layers(k)[index].out_features)) for k in range(self.num_replicas)]
            out += [rows, rows]
        return out
