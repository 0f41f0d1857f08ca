"""How many replicas one packed model may hold: the default of ``hydra.launcher.max_pack``, from the memory
free on the device the group trains on and what one replica needs there.

One replica needs its weights, their gradients, the copy of its best epoch's weights and its optimizer's
state (:data:`OPTIMIZER_SLOTS` tensors of the weights' size: Adam's two moments), and the activations its
training step keeps for the backward pass. The activations are measured, not guessed: one training
forward pass of one replica, built as its run builds it, on two samples of the training split, summing
the tensors autograd saves (``torch.autograd.graph.saved_tensors_hooks``) other than the weights
themselves, scaled to the batch size. The data splits are held on the
device once for the whole group. :func:`max_pack_for` lets replicas use half of what is left, so the
estimate's error and the framework's own buffers have room, and at most :data:`MOST`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from lossbench.errors import one_line

log = logging.getLogger("lossbench")

#: optimizer state tensors per weight tensor (Adam and AdamW: two moments; SGD with momentum: one)
OPTIMIZER_SLOTS = 2
#: copies of the weights besides the optimizer's state: the weights, their gradients, the best epoch's
STATE_COPIES = 3
#: the share of the free memory replicas may use
SHARE = 0.5
#: the most replicas of one packed model when memory allows more (beyond it a step is no faster per
#: replica on a CPU, and a GPU is long busy)
MOST = 64
#: samples of the probe's forward pass
PROBE_SAMPLES = 2


@dataclass(frozen=True)
class ReplicaMemory:
    """What one replica of a packed group needs, and what the group needs once, in bytes."""

    state: int  # weights, gradients and optimizer state
    activations: int  # saved by one training step of a full batch
    data: int  # the data splits on the device, shared by the group

    @property
    def per_replica(self) -> int:
        return self.state + self.activations


def training_device(cfg: DictConfig) -> torch.device:
    """The device a group of runs ``cfg`` trains on: the first CUDA GPU when its accelerator allows one and
    one is present, else the CPU."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def free_bytes(device: torch.device) -> int:
    """Memory free on ``device``: CUDA's free memory, or the system's available memory for the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def measure(cfg: DictConfig) -> ReplicaMemory:
    """What one replica of the run ``cfg`` needs (built as its run builds it, then dropped)."""
    from lossbench.packed.replicas import build_replicas

    dm, (replica,) = build_replicas([cfg])
    x, y = (t[:PROBE_SAMPLES] for t in dm.splits["train"])
    if dm.train_transform is not None:
        x = dm.train_transform(x, 0)
    saved = 0
    weights_at = {p.untyped_storage().data_ptr() for p in replica.parameters()}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if tensor.untyped_storage().data_ptr() not in weights_at:  # a layer keeps its weight: no activation
            saved += tensor.numel() * tensor.element_size()
        return tensor

    model = replica.model.train()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        replica.loss(model(x.float() if not x.is_floating_point() else x), y)
    widen = 2 if str(cfg.trainer.get("precision", "32-true")).startswith("64") else 1
    weights = sum(p.numel() * p.element_size() for p in replica.parameters())
    data = sum(t.numel() * t.element_size() for split in dm.splits.values() for t in split)
    batch = int(cfg.data.get("batch_size") or getattr(dm, "batch_size", PROBE_SAMPLES))
    return ReplicaMemory(
        state=widen * weights * (STATE_COPIES + OPTIMIZER_SLOTS),
        activations=widen * saved * max(batch, 1) // max(len(y), 1),
        data=data,
    )


def max_pack_for(cfg: DictConfig) -> int:
    """The most replicas of the run ``cfg`` one packed model may hold in the memory free now (at least 1,
    at most :data:`MOST`), said in one line."""
    device = training_device(cfg)
    need = measure(cfg)
    free = free_bytes(device)
    fits = int(SHARE * max(free - need.data, 0) // max(need.per_replica, 1))
    limit = max(1, min(MOST, fits))
    log.info(
        "max_pack: %d replicas per packed model (one needs about %s of the %s free on %s; at most %d; "
        "set hydra.launcher.max_pack to choose)",
        limit,
        size(need.per_replica),
        size(free),
        device.type,
        MOST,
    )
    return limit


class UnmeasuredReplica(Exception):
    """One replica of a run could not be built to measure it: the run's own problem (its data, model or
    loss), which its ordinary run names."""


def memory_limits() -> Callable[[DictConfig], int]:
    """:func:`max_pack_for` of a run's config, measured once per kind of group (its
    :func:`~lossbench.packed.replicas.group_key`); :class:`UnmeasuredReplica` when the run's replica
    cannot be built (nothing is kept of it: the next run of that kind is measured)."""
    from lossbench.packed.packable import group_key

    limits: dict[str, int] = {}

    def limit(cfg: DictConfig) -> int:
        key = json.dumps(group_key(cfg), sort_keys=True, default=str)
        if key not in limits:
            try:
                limits[key] = max_pack_for(cfg)
            except Exception as err:  # measuring builds the data and a replica: a failure is the run's own
                raise UnmeasuredReplica(one_line(err)) from err
        return limits[key]

    return limit


def size(n: float) -> str:
    """``1.5 GiB``: a byte count in binary units."""
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            break
        n /= 1024
    return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
