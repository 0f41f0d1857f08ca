"""The packed replicas' NaN/Inf guard: each replica's first non-finite training loss, kept on the device
and read by the host every N steps, as :class:`lossbench.nonfinite.NonFiniteGuard` guards one run.

Reading a CUDA tensor waits for the GPU to finish everything queued, so a packed step that read its
replicas' losses every step would stall the GPU once per step. :class:`ReplicaGuard` keeps, per replica,
the first step whose loss was not finite and that loss (two ``torch.where`` updates, no host read); the
host reads them every ``every_n_steps`` steps and before every validation and checkpoint
(:meth:`ReplicaGuard.read`). With ``every_n_steps=1`` (one CPU process, where a read costs nothing) a
replica stops before its bad step's backward pass, exactly as its run does; otherwise it may take up to
``every_n_steps - 1`` further updates from non-finite gradients, which stay in its own slices of the
stacked weights (no parameter is shared, and every update is per replica), as its run's weights take them
before its guard reads, and no checkpoint of it is written from them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lossbench.errors import check_range


class ReplicaGuard:
    """Records the replicas' non-finite training losses on their device; :meth:`read` reports them.

    Args:
        every_n_steps: host reads every this many :meth:`observe` calls (1: at every call).
    """

    def __init__(self, every_n_steps: int) -> None:
        self.every_n_steps = int(check_range("nonfinite_check.every_n_steps", every_n_steps, 1))
        self.calls = 0
        self.bad_step: Tensor | None = None  # per replica: -1 while every loss was finite
        self.bad_value: Tensor | None = None
        self.reported: set[int] = set()

    def observe(self, losses: Tensor, step: int) -> list[tuple[int, float, int]]:
        """Record one step's per-replica ``losses``; when a read is due, the replicas found non-finite
        since the last read (:meth:`read`), else none."""
        self.calls += 1
        losses = losses.detach()
        if self.bad_step is None:
            self.bad_step = torch.full(losses.shape, -1, dtype=torch.long, device=losses.device)
            self.bad_value = torch.zeros(losses.shape, dtype=torch.float32, device=losses.device)
        assert self.bad_value is not None
        first = torch.logical_not(torch.isfinite(losses)) & (self.bad_step < 0)
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_value = torch.where(first, losses.float(), self.bad_value)
        return self.read() if self.calls % self.every_n_steps == 0 else []

    def read(self) -> list[tuple[int, float, int]]:
        """``(replica, its first non-finite loss, the step)`` of each replica found non-finite and not
        reported before (one host read)."""
        if self.bad_step is None or self.bad_value is None:
            return []
        steps, values = self.bad_step.tolist(), self.bad_value.tolist()
        found = [(k, values[k], s) for k, s in enumerate(steps) if s >= 0 and k not in self.reported]
        self.reported.update(k for k, _, _ in found)
        return found
