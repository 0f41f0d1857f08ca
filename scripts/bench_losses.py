"""Forward+backward time and peak memory of every loss, against references measured in the same run.

    python scripts/bench_losses.py                      # N=65,536, C=100 and C=10, CPU
    python scripts/bench_losses.py --device cuda --classes 100 --loss ce focal sigmoid_focal

Each loss is built from ``conf/loss/<name>.yaml`` (class-count losses get a long-tailed count vector).
Classification losses get logits ``[N, C]`` and class indices; regression losses outputs and targets
``[N, C]``. Columns:

- ``ms``: median wall time of ``loss(z, y).backward()`` over ``--repeat`` rounds (after a warm-up round).
- ``×ce`` / ``×mse``: median over rounds of the time ratio to ``F.cross_entropy`` (classification)
  or ``F.mse_loss`` (regression).
- ``×ref``: time ratio to the loss's own reference implementation (e.g. focal and sigmoid_focal vs
  ``torchvision.ops.sigmoid_focal_loss``), where there is one. Within each round the loss and its
  references run back to back, so the ratios hold up on a loaded machine better than the raw times.
  (``mse``/``huber`` run in their classification mode, on one-hot targets.)
- ``saved``: ``[N, C]``-sized tensors kept for the backward pass (via ``saved_tensors_hooks``; the
  input itself not counted).
- ``peak``: the most memory allocated at once during forward+backward, in units of one ``[N, C]`` tensor
  of the input's dtype; ``extra = peak - 1`` (the input's gradient is the one unavoidable ``[N, C]``).
  CUDA: ``torch.cuda.max_memory_allocated``; CPU: the PyTorch profiler's memory timeline.

Target: focal ≤ 1.0× torchvision's sigmoid focal time and ≤ 1.3× cross-entropy; every loss
``extra ≤ 3``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from torchvision.ops import sigmoid_focal_loss

from lossbench.config import CONFIG_DIR, group_options
from lossbench.losses import Task

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _tv_focal(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    t = F.one_hot(y, z.shape[-1]).to(z.dtype)
    return sigmoid_focal_loss(z, t, alpha=0.25, gamma=2.0, reduction="sum") / len(y)


def _tv_bce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    t = F.one_hot(y, z.shape[-1]).to(z.dtype)
    return F.binary_cross_entropy_with_logits(z, t, reduction="sum") / len(y)


REFERENCES: dict[str, LossFn] = {
    "torch.cross_entropy": lambda z, y: F.cross_entropy(z, y),
    "torchvision.sigmoid_focal": _tv_focal,
    "torch.bce_with_logits": _tv_bce,
    "torch.mse_loss": lambda o, t: F.mse_loss(o, t),
    "torch.l1_loss": lambda o, t: F.l1_loss(o, t),
    "torch.huber_loss": lambda o, t: F.huber_loss(o, t),
    "torch.smooth_l1_loss": lambda o, t: F.smooth_l1_loss(o, t),
}
OWN_REFERENCE = {
    "ce": "torch.cross_entropy",
    "focal": "torchvision.sigmoid_focal",
    "sigmoid_focal": "torchvision.sigmoid_focal",
    "bce": "torch.bce_with_logits",
    "l1": "torch.l1_loss",
    "smooth_l1": "torch.smooth_l1_loss",
}


def kind(loss: LossFn) -> str | int:
    """The inputs a loss gets: ``"classification"``, ``"multilabel"`` or, for regression, the number of
    outputs per target (1 for a point loss, 2 for a mean + variance head, ...)."""
    tasks = getattr(loss, "tasks", frozenset())
    if Task.CLASSIFICATION in tasks:
        return "classification"
    if Task.MULTILABEL in tasks:
        return "multilabel"
    return loss.num_outputs(Task.REGRESSION, None, 1) if hasattr(loss, "num_outputs") else 1


def build(name: str, classes: int) -> tuple[LossFn, str | int]:
    cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
    cls = get_class(cfg._target_)
    extra = {}
    if cls.needs_class_counts:
        extra["class_counts"] = [int(1000 * 0.9**c) + 1 for c in range(classes)]  # long-tailed
    loss = instantiate(cfg, **extra)
    loss.on_train_epoch_start(0, 1)
    return loss, kind(loss)


def make_inputs(n: int, c: int, inputs: str | int, device: str, dtype: torch.dtype):
    """Outputs ``[N, C]`` and targets: class indices, 0/1 label vectors ``[N, C]`` (a fifth positive), or
    regression values ``[N, C // k]`` for ``k`` outputs per target (then ``k · (C // k)`` outputs)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    width = c if isinstance(inputs, str) else inputs * max(c // inputs, 1)
    z = (torch.randn(n, width, generator=g) * 3).to(device=device, dtype=dtype).requires_grad_()
    if inputs == "classification":
        y = torch.randint(0, c, (n,), generator=g).to(device)
    elif inputs == "multilabel":
        y = (torch.rand(n, c, generator=g) < 0.2).to(device=device, dtype=dtype)
    else:
        y = torch.randn(n, width // inputs, generator=g).to(device=device, dtype=dtype)
    return z, y


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _once(fn: LossFn, z: torch.Tensor, y: torch.Tensor, device: str) -> float:
    z.grad = None
    sync(device)
    start = time.perf_counter()
    fn(z, y).backward()
    sync(device)
    z.grad = None
    return time.perf_counter() - start


def time_interleaved(fns: list[LossFn], inputs: list[tuple], device: str, repeat: int) -> list[list[float]]:
    """Seconds per call of each function, the functions taking turns in every round (after a warm-up round).

    On a shared machine the load drifts; taking turns keeps each ratio within one round comparable.
    """
    rounds = [
        [_once(fn, z, y, device) for fn, (z, y) in zip(fns, inputs, strict=True)] for _ in range(repeat + 1)
    ]
    return rounds[1:]


def saved_tensors(fn: LossFn, z: torch.Tensor, y: torch.Tensor) -> float:
    """``[N, C]``-equivalents saved for backward (the input itself excluded)."""
    unit = z.numel() * z.element_size()
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() != z.data_ptr() and t.numel() >= z.numel():
            seen[t.data_ptr()] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(z, y)
    out.backward()
    z.grad = None
    return sum(seen.values()) / unit


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's native start/stop chatter on file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_memory(fn: LossFn, z: torch.Tensor, y: torch.Tensor, device: str) -> float:
    """Peak bytes allocated during forward+backward, in ``[N, C]`` units of the input."""
    unit = z.numel() * z.element_size()
    z.grad = None
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn(z, y).backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        z.grad = None
        return peak / unit
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        with profile(
            activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
        ) as p:
            fn(z, y).backward()
            z.grad = None
        current = peak = 0
        for _, action, _, size in p._memory_profile().timeline:
            if action == Action.CREATE:
                current += size
            elif action == Action.DESTROY:
                current -= size
            peak = max(peak, current)
    return peak / unit


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=65_536)
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 10])
    parser.add_argument(
        "--loss", nargs="+", default=group_options("loss"), help="loss options (default: all)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 avoids OpenMP stalls on a shared machine)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the (slow on CPU) peak-memory pass")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print(
        f"N={args.n:,} device={args.device} dtype={args.dtype} torch={torch.__version__} "
        f"threads={torch.get_num_threads()}"
    )
    for c in args.classes:
        entries: list[tuple[str, LossFn, str | int, bool]] = [
            (
                ref,
                fn,
                "classification"
                if not ref.startswith("torch.") or ref in ("torch.cross_entropy", "torch.bce_with_logits")
                else 1,
                True,
            )
            for ref, fn in REFERENCES.items()
        ]
        entries += [(name, *build(name, c), False) for name in args.loss]
        by_name = {name: (fn, inputs) for name, fn, inputs, _ in entries}
        print(f"\n### C = {c}\n")
        print("| loss | ms | ×ce / ×mse | ref | ×ref | saved | peak | extra |")
        print("|---|---:|---|---|---:|---:|---:|---:|")
        for name, fn, inputs_kind, is_ref in entries:
            base = "torch.cross_entropy" if inputs_kind == "classification" else "torch.mse_loss"
            ref = None if is_ref else OWN_REFERENCE.get(name)
            names = [name, base] + ([ref] if ref else [])
            fns = [by_name[n][0] for n in names]
            inputs = [make_inputs(args.n, c, by_name[n][1], args.device, dtype) for n in names]
            rounds = time_interleaved(fns, inputs, args.device, args.repeat)
            ms = 1e3 * statistics.median(r[0] for r in rounds)
            x_base = statistics.median(r[0] / r[1] for r in rounds)
            x_ref = statistics.median(r[0] / r[2] for r in rounds) if ref else None
            z, y = inputs[0]
            saved = saved_tensors(fn, z, y)
            peak = float("nan") if args.no_memory else peak_memory(fn, z, y, args.device)
            row = {
                "loss": name, "classes": c, "ms": ms, "base": base, "x_base": x_base, "ref": ref,
                "x_ref": x_ref, "saved": saved, "peak": peak, "extra": peak - 1,
            }  # fmt: skip
            rows.append(row)
            print(
                f"| {name} | {ms:.1f} | {x_base:.2f} | {ref or ''} "
                f"| {'' if x_ref is None else f'{x_ref:.2f}'} "
                f"| {saved:.1f} | {peak:.1f} | {peak - 1:.1f} |",
                flush=True,
            )
        focal = next((r for r in rows if r["loss"] == "focal" and r["classes"] == c), None)
        if focal:
            ok_tv = focal["x_ref"] <= 1.0
            ok_ce = focal["x_base"] <= 1.3
            print(
                f"\nfocal: {focal['x_ref']:.2f}× torchvision sigmoid focal "
                f"({'met' if ok_tv else 'MISSED'} ≤ 1.0), "
                f"{focal['x_base']:.2f}× CE ({'met' if ok_ce else 'MISSED'} ≤ 1.3)"
            )
        over = [
            r["loss"]
            for r in rows
            if r["classes"] == c and r["extra"] > 3.05 and not r["loss"].startswith("torch")
        ]
        if not args.no_memory:
            print(f"extra [N,C] tensors > 3: {', '.join(over) if over else 'none'}")
    return rows


if __name__ == "__main__":
    main()
