"""The ``packed`` row of ``scripts/device_check.py``: ResNet-32 runs on CIFAR-10-shaped data (4 losses × 4
seeds: 16 replicas) trained as one packed model (:func:`lossbench.packed.fit_packed`) against the same runs
trained one by one (:func:`lossbench.run.run`), in one process, each with the peak device memory beside it
(``--tiny``: 2 losses × 2 seeds).

- runs/hour: ``16 × 3600 / packed wall`` against ``3600 / one run's wall`` (the mean of the first
  ``sequential`` runs of the 16: each run costs the same, so a few give the rate);
- training images/s of the packed fit (every replica's images, validation included) against the packed
  model's own limit on the device: its training step alone (forward, cross-entropy over every replica,
  backward, AdamW on the stacked parameters) on device-resident tensors, no loader and no Lightning.

Both paths run with ``logger=none`` and no checkpoint callbacks, so they do the same work per epoch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOSSES = ("ce", "focal", "sce", "gce")
SEEDS = 4


def configs(
    work: Path, data_dir: Path, device: str, epochs: int, batch: int, losses: Sequence[str], seeds: int
) -> list[Any]:
    """The runs' composed configs, each with its own run dir under ``work``."""
    from lossbench.config import compose_run

    common = [
        "data=cifar10",
        "model=resnet32",
        f"paths.data_dir={data_dir}",
        "data.verify_checksums=false",
        f"data.batch_size={batch}",
        f"trainer.max_epochs={epochs}",
        "logger=none",
        "callbacks.model_checkpoint=null",
        "callbacks.last_checkpoint=null",
        "callbacks.rich_progress_bar=null",
        "trainer.enable_progress_bar=false",
        "++trainer.enable_checkpointing=false",  # else each run writes Lightning's own checkpoint
        *(["trainer=gpu", "trainer.precision=bf16-mixed"] if device == "cuda" else []),
    ]
    return [
        compose_run([*common, f"loss={loss}", f"seed={seed}"], output_dir=work / f"{loss}_{seed}")
        for loss in losses
        for seed in range(seeds)
    ]


def peak_memory(device: str) -> tuple[Any, Any]:
    """A context's start and end for the peak device memory: ``(reset, read)`` functions."""
    import torch

    def reset() -> None:
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def read() -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")

    return reset, read


def limit_images_per_s(cfgs: Sequence[Any], device: str, steps: int, warmup: int) -> float:
    """Images/s of the packed model's training step alone on ``device``-resident tensors."""
    import torch
    import torch.nn.functional as F

    from lossbench.packed import build_packed

    module, data = build_packed(cfgs)
    model = module.model.to(device).train()
    batch = data.data.batch_size
    k = model.num_replicas
    x = torch.randn(k, batch, *data.data.splits["train"][0].shape[1:], device=device)
    y = torch.randint(0, 10, (k, batch), device=device)
    optimizer = torch.optim.AdamW(model.stacked_parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            outputs = model(x)[..., :10]
            loss = F.cross_entropy(outputs.reshape(-1, 10).float(), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch * k / (time.perf_counter() - start)


def packed_row(
    device: str, work: Path, data_dir: Path, tiny: bool, figures: dict[str, Any]
) -> tuple[str, str, str]:
    """The row's ``(value, baseline, ratio)`` texts; its numbers go into ``figures["packed"]``."""
    from lossbench.packed import fit_packed
    from lossbench.run import run

    epochs, batch, sequential = (2, 8, 1) if tiny else (3, 128, 2)
    losses, seeds = (LOSSES[:2], 2) if tiny else (LOSSES, SEEDS)  # tiny: 4 replicas, the same code paths
    cfgs = configs(work / "packed", data_dir, device, epochs, batch, losses, seeds)
    reset, read = peak_memory(device)
    reset()
    start = time.perf_counter()
    results = fit_packed(cfgs)
    packed_s = time.perf_counter() - start
    packed_gib = read()
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} packed replicas failed: {failed[0].get('error')}")
    alone = configs(work / "sequential", data_dir, device, epochs, batch, LOSSES[:1], sequential)
    walls = []
    reset()
    for cfg in alone:
        start = time.perf_counter()
        run(cfg)
        walls.append(time.perf_counter() - start)
    run_gib = read()
    n_train = train_samples(cfgs[0])
    images_per_s = len(cfgs) * n_train * epochs / packed_s
    limit = limit_images_per_s(cfgs, device, *((2, 1) if tiny else (50, 5)))
    packed_per_hour = len(cfgs) * 3600 / packed_s
    run_per_hour = 3600 * len(walls) / sum(walls)
    figures["packed"] = {
        "replicas": len(cfgs),
        "packed_s": packed_s,
        "packed_runs_per_hour": packed_per_hour,
        "packed_peak_gib": packed_gib,
        "sequential_run_s": walls,
        "sequential_runs_per_hour": run_per_hour,
        "sequential_peak_gib": run_gib,
        "packed_images_per_s": images_per_s,
        "packed_limit_images_per_s": limit,
    }
    run_s = sum(walls) / len(walls)
    return (
        f"{packed_per_hour:.0f} runs/h ({len(cfgs)} replicas in {packed_s:.0f} s, peak {gib(packed_gib)}); "
        f"{images_per_s:.0f} images/s = {images_per_s / limit:.2f} of its limit {limit:.0f}",
        f"one by one {run_per_hour:.0f} runs/h ({run_s:.0f} s a run, peak {gib(run_gib)})",
        f"{packed_per_hour / run_per_hour:.2f}×",
    )


def gib(value: float) -> str:
    """``3.2 GiB``, or ``n/a`` where the device does not report its peak (the CPU)."""
    return "n/a" if value != value else f"{value:.1f} GiB"


def train_samples(cfg: Any) -> int:
    """The size of the training split of ``cfg``'s data."""
    from lossbench.build import build_data

    return len(build_data(cfg).splits["train"][1])
