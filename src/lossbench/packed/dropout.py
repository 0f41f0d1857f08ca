"""Dropout with one random stream per replica, so each replica draws the masks its own run would draw.

An unpacked run's dropout masks come from the global CPU generator, in the order of its forward passes:
on the CPU, ``F.dropout(h, p, training=True)`` is ``h * (torch.empty_like(h).bernoulli_(1 - p) / (1 - p))``
drawn from that generator. :class:`ReplicaDropout` keeps, per replica, a generator started from the global
generator's state at the moment that replica's run would start training
(:attr:`lossbench.packed.replicas.Replica.rng_state`) and draws each replica's mask the same way, so on the
CPU a packed replica drops exactly the units its unpacked run drops. On a GPU the unpacked run draws from
the CUDA generator with a fused kernel, which these masks do not reproduce: there each replica gets its
own CUDA generator seeded by its seed (independent streams, not the unpacked run's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ReplicaDropout(nn.Module):
    """Per-replica dropout of ``[K, B, ...]`` activations, each replica from its own generator.

    Args:
        rng_states: per replica, the CPU generator state (``torch.get_rng_state()``) its stream starts from.
        seeds: per replica, the seed of its CUDA generator (used only for activations on a GPU).
    """

    def __init__(self, rng_states: Sequence[Tensor], seeds: Sequence[int]) -> None:
        super().__init__()
        if len(rng_states) != len(seeds):
            raise ValueError(f"{len(rng_states)} generator states for {len(seeds)} replicas")
        self.seeds = list(seeds)
        self.cpu_generators = []
        for state in rng_states:
            generator = torch.Generator()
            generator.set_state(state.clone())
            self.cpu_generators.append(generator)
        self.device_generators: dict[torch.device, list[torch.Generator]] = {}

    def generators(self, device: torch.device) -> list[torch.Generator]:
        """The replicas' generators for tensors on ``device``."""
        if device.type == "cpu":
            return self.cpu_generators
        if device not in self.device_generators:
            self.device_generators[device] = [
                torch.Generator(device=device).manual_seed(seed) for seed in self.seeds
            ]
        return self.device_generators[device]

    def forward(self, h: Tensor, p: float) -> Tensor:
        """``h`` (``[K, B, ...]``) with replica ``k``'s units dropped with probability ``p`` by its generator
        and the kept ones scaled by ``1 / (1 - p)``; ``h`` itself when not training or ``p == 0``."""
        if not self.training or p == 0:
            return h
        if p == 1:
            return h * 0
        mask = torch.empty_like(h, memory_format=torch.contiguous_format)
        for k, generator in enumerate(self.generators(h.device)):
            mask[k].bernoulli_(1 - p, generator=generator)  # contiguous: drawn as a tensor of its own
        return h * mask.div_(1 - p)
