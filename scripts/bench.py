"""lossbench's performance benchmark: framework overhead against baselines measured in the same run.

    python scripts/bench.py                 # CPU, ~3-4 min on 2 cores (make bench)
    python scripts/bench.py --quick         # fewer repeats, smaller loss-kernel sizes
    python scripts/bench.py --device cuda   # the same on a GPU, plus CIFAR-10 ResNet-18 images/s
    python scripts/bench.py --only step,startup

Items (each a ratio against a baseline measured beside it, in this process or its subprocesses):

1. ``step``: per-step time of a lossbench training run (``python train.py`` with the default config,
   timed by :class:`lossbench.perf.StepTimer`) vs a hand-written PyTorch loop with the same data split,
   MLP, batch size, loss, optimizer and epochs (in this process); also a plain Lightning module with a
   ``DataLoader`` and per-step ``self.log`` (a reference).
   A step's time is the training loop's wall time per epoch divided by its optimizer steps (validation
   excluded); the median over epochs 2.. and repeats.
2. ``startup``: wall time of ``python train.py`` (imports included, default config: W&B offline + CSV)
   and of ``python train.py logger=csv``, against ``python -c "import torch"`` as the floor; and of
   ``python train.py --help``, which loads neither torch nor Lightning (target ≤ 2 s).
3. ``sweep``: ``python train.py -m logger=csv loss=<8 classification losses> seed=0,1,2`` in one process
   against ``scripts/hand_sweep.py`` (the same 24 runs as a plain PyTorch script in one process: train,
   validate each epoch, keep the best weights, test them); per-run phases from each job's ``metrics.json``.
   Beside them, the floor of any Lightning-based sweep: ``hand_sweep.py --lightning`` (the same runs with a
   bare LightningModule and Trainer), and the seconds Hydra takes to compose one job's config.
4. ``losses``: ``scripts/bench_losses.py`` (the loss zoo's kernels).
5. ``cuda`` (``--device cuda``): ResNet-18 on CIFAR-10-shaped synthetic data, images/s with the data on
   the device (batched slicing + batched augmentation) vs a ``DataLoader`` with workers.
6. ``image_folder``: training images/s of ``python train.py data=image_folder model=cnn`` on a folder of
   2,000 32x32 PNGs (10 classes, written to a temp dir) vs torchvision ``ImageFolder`` + ``DataLoader`` +
   a hand-written loop over the same training images, with the same CNN, transforms and ``num_workers``
   (in this process); epochs after the first.

7. ``report``: ``lossbench compare`` on a synthetic sweep of 1,320 runs, with and without plots.
8. ``tune_workers``: ``lossbench tune`` trials per minute with ``--workers 2`` vs ``--workers 1``.
9. ``shared``: ``python train.py logger=csv`` with lossbench's wait-policy choice
   (:mod:`lossbench.threads`: PASSIVE when other processes use the cores) vs OpenMP's own default, on an
   idle machine and with one busy process per core beside it.
10. ``ddp``: the default run's step time with ``trainer=ddp_cpu trainer.devices=1`` vs ``trainer=cpu``
    (``scripts/bench_ddp.py``).
11. ``packed``: ``python train.py -m hydra/launcher=packed`` vs the same sweep with the basic launcher and vs
    ``scripts/hand_sweep.py``, 8 losses × 5 seeds, 10 epochs (``scripts/bench_packed.py``).

The table is rendered by ``scripts/bench_render.py``. Writes ``benchmarks/results/bench-<time>.{md,json}``
(and ``latest.{md,json}``) and prints the table.
Subprocesses run with ``WANDB_MODE=offline``: nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_ddp
import bench_packed
from bench_render import machine, markdown

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "train.py"
ITEMS = ("step", "startup", "sweep", "losses", "cuda", "image_folder", "report", "tune_workers", "shared")
ITEMS += ("ddp",)
ITEMS += ("packed",)
FOLDER_IMAGES, FOLDER_CLASSES, FOLDER_BATCH = 2000, 10, 64
SWEEP_LOSSES = 8
SWEEP_SEEDS = 3
TIMER = "+callbacks.step_timer._target_=lossbench.perf.StepTimer"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def env() -> dict[str, str]:
    src = str(ROOT / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": src + (os.pathsep + path if path else ""),
    }


def timed_run(
    args: list[str], cwd: Path, timeout: float | None = 600
) -> tuple[float, subprocess.CompletedProcess]:
    cwd.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env=env(), stdin=subprocess.DEVNULL, timeout=timeout
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall, proc


def train_cmd(*overrides: str) -> list[str]:
    return [sys.executable, str(TRAIN), *overrides]


def device_overrides(device: str) -> list[str]:
    return ["trainer=gpu"] if device == "cuda" else []


# --- 1. step time ---------------------------------------------------------------------------------------
def compose(*overrides: str) -> Any:
    """The training config of ``overrides`` (:func:`lossbench.config.compose_run`)."""
    from lossbench.config import compose_run

    return compose_run(list(overrides))


def digits_setup(device: str, seed: int = 0) -> tuple[Any, Any, Any]:
    """The default run's data splits (on ``device``), a fresh MLP and its AdamW factory, seeded like it."""
    import lightning as L
    from hydra.utils import instantiate

    from lossbench.models import build_model

    cfg = compose(f"seed={seed}")
    L.seed_everything(seed, workers=True, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = build_model(cfg.model, input_shape=dm.input_shape, num_outputs=dm.num_classes).to(device)
    splits = {k: tuple(t.to(device) for t in v) for k, v in dm.splits.items()}
    return splits, model, instantiate(cfg.optim.optimizer)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def hand_loop(device: str, epochs: int, batch_size: int = 64, seed: int = 0) -> dict[str, Any]:
    """The baseline: a plain PyTorch loop over the same tensors, with a validation pass per epoch."""
    import torch
    import torch.nn.functional as F

    from lossbench.data.loader import epoch_seed

    torch.use_deterministic_algorithms(device == "cpu", warn_only=True)  # as trainer=cpu / trainer=gpu
    splits, model, optimizer_factory = digits_setup(device, seed)
    optimizer = optimizer_factory(model.parameters())
    (x, y), (xv, yv) = splits["train"], splits["val"]
    n = len(y)
    epochs_out, fit_start = [], time.perf_counter()
    for epoch in range(epochs):
        sync(device)
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch))).to(device)
        steps = 0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        sync(device)
        epochs_out.append({"train_s": time.perf_counter() - start, "steps": steps})
        model.eval()
        with torch.no_grad():
            (model(xv).argmax(-1) == yv).float().mean().item()
    sync(device)
    return {"epochs": epochs_out, "fit_s": time.perf_counter() - fit_start}


def plain_lightning(device: str, epochs: int, workdir: Path, batch_size: int = 64, seed: int = 0) -> dict:
    """The "before" reference: Lightning with a DataLoader, per-step ``self.log`` and per-batch metrics."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    from lossbench.perf import StepTimer

    splits, model, optimizer_factory = digits_setup("cpu", seed)

    class Plain(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.model(x), y)
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            logits = self.model(x)
            self.log("val/loss", F.cross_entropy(logits, y))
            self.log("val/acc", (logits.argmax(-1) == y).float().mean())

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return optimizer_factory(self.parameters())

    train = DataLoader(TensorDataset(*splits["train"]), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(*splits["val"]), batch_size=1024)
    timer = StepTimer(str(workdir))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        deterministic=device == "cpu",
        logger=CSVLogger(str(workdir)),
        callbacks=[timer],
        default_root_dir=str(workdir),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Plain(), train, val)
    return {"epochs": timer.epochs, "fit_s": timer.fit_s}


def lossbench_run(device: str, epochs: int, workdir: Path, *overrides: str) -> dict[str, Any]:
    out = workdir / "run"
    wall, _ = timed_run(
        train_cmd(
            *device_overrides(device),
            f"trainer.max_epochs={epochs}",
            TIMER,
            f"hydra.run.dir={out}",
            *overrides,
        ),
        cwd=workdir,
    )
    times = json.loads((out / "step_times.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    return {**times, "wall_s": wall, "timings": metrics.get("timings", {})}


def step_ms(result: dict[str, Any]) -> float:
    """Median per-step ms over the epochs after the first."""
    epochs = result["epochs"][1:] or result["epochs"]
    return median([1000 * e["train_s"] / e["steps"] for e in epochs])


def bench_step(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    runs: dict[str, list[dict]] = {"hand": [], "lossbench": [], "lightning": []}
    for r in range(args.repeats):
        runs["hand"].append(hand_loop(args.device, args.epochs))
        runs["lossbench"].append(lossbench_run(args.device, args.epochs, workdir / f"step{r}"))
        if not args.no_lightning:
            runs["lightning"].append(plain_lightning(args.device, args.epochs, workdir / f"pl{r}"))
    result: dict[str, Any] = {"epochs": args.epochs, "batch_size": 64, "repeats": args.repeats}
    for name, rs in runs.items():
        if rs:
            result[name] = {
                "step_ms": median([step_ms(x) for x in rs]),
                "fit_s": median([x["fit_s"] for x in rs]),
                "step_ms_each": [round(step_ms(x), 4) for x in rs],
            }
    # per repeat ratios (each pair measured back to back), then their median
    result["ratio"] = median(
        [step_ms(a) / step_ms(b) for a, b in zip(runs["lossbench"], runs["hand"], strict=True)]
    )
    result["fit_ratio"] = median(
        [a["fit_s"] / b["fit_s"] for a, b in zip(runs["lossbench"], runs["hand"], strict=True)]
    )
    if runs["lightning"]:
        result["lightning_ratio"] = median(
            [step_ms(a) / step_ms(b) for a, b in zip(runs["lightning"], runs["hand"], strict=True)]
        )
    return result


# --- 2. startup -----------------------------------------------------------------------------------------
def bench_startup(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    commands = {
        "import_torch": [sys.executable, "-c", "import torch"],
        "import_lossbench_run": [sys.executable, "-c", "import lossbench.run"],
        "train_help": [sys.executable, str(TRAIN), "--help"],
        "train_default": train_cmd(*device_overrides(args.device)),
        "train_csv": train_cmd(*device_overrides(args.device), "logger=csv"),
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    for r in range(args.repeats):
        for name, cmd in commands.items():
            run_dir = workdir / f"{name}{r}"
            extra = [f"hydra.run.dir={run_dir}"] if cmd[1] == str(TRAIN) else []
            walls[name].append(timed_run(cmd + extra, cwd=workdir)[0])
    result = {k: {"median_s": median(v), "each_s": [round(w, 3) for w in v]} for k, v in walls.items()}
    result["ratio_to_torch_import"] = result["train_default"]["median_s"] / result["import_torch"]["median_s"]
    return result


# --- 3. sweep -------------------------------------------------------------------------------------------
def sweep_losses() -> list[str]:
    from lossbench.config import losses_for_task
    from lossbench.losses.base import Task

    available = losses_for_task(Task.CLASSIFICATION)
    preferred = [n for n in ("ce", "focal", "bce", "mse", "huber") if n in available]
    rest = [n for n in available if n not in preferred]
    return (preferred + rest)[:SWEEP_LOSSES]


def compose_seconds(losses: list[str]) -> float:
    """Median seconds Hydra takes to compose one job of the sweep (its basic sweeper composes every job once
    to check the batch, then its launcher composes it again to run it)."""
    from lossbench.config import compose_run

    compose_run(["logger=csv"])  # the config search path, the plugins
    times = []
    for loss in losses:
        for seed in range(SWEEP_SEEDS):
            start = time.perf_counter()
            compose_run(["logger=csv", f"loss={loss}", f"seed={seed}"])
            times.append(time.perf_counter() - start)
    return median(times)


def bench_sweep(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The sweep in one ``-m`` process (``logger=csv``) against ``scripts/hand_sweep.py`` doing the same
    work in one process; pairs alternate which runs first, the ratio is the median over pairs."""
    losses = sweep_losses()
    seeds = ",".join(str(s) for s in range(SWEEP_SEEDS))
    hand_cmd = [sys.executable, str(ROOT / "scripts" / "hand_sweep.py"), "--losses", ",".join(losses),
                "--seeds", str(SWEEP_SEEDS)]  # fmt: skip
    floor_cmd = [*hand_cmd, "--lightning"]
    walls: dict[str, list[float]] = {"lossbench": [], "hand": [], "lightning": []}
    jobs: list[dict[str, Any]] = []
    for r in range(max(1, args.repeats - 1)):
        sweep_dir = workdir / f"sweep{r}"
        cmd = train_cmd(
            "-m", *device_overrides(args.device), "logger=csv", f"loss={','.join(losses)}", f"seed={seeds}",
            f"hydra.sweep.dir={sweep_dir}",
        )  # fmt: skip
        order = ("hand", "lightning", "lossbench") if r % 2 == 0 else ("lossbench", "lightning", "hand")
        for name in order:
            command = {"hand": hand_cmd, "lightning": floor_cmd, "lossbench": cmd}[name]
            walls[name].append(timed_run(command, cwd=workdir, timeout=1800)[0])
        jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/metrics.json"))]
    n = len(jobs)
    phases: dict[str, list[float]] = {}
    for job in jobs:
        for k, v in job.get("timings", {}).items():
            phases.setdefault(k, []).append(v)
    run_walls = [j.get("wall_s", 0.0) for j in jobs]
    wall = median(walls["lossbench"])
    return {
        "losses": losses,
        "seeds": SWEEP_SEEDS,
        "runs": n,
        "ok": sum(j.get("status") == "ok" for j in jobs),
        "wall_s": wall,
        "walls_s": walls["lossbench"],
        "hand_wall_s": median(walls["hand"]),
        "hand_walls_s": walls["hand"],
        "ratio": median([a / b for a, b in zip(walls["lossbench"], walls["hand"], strict=True)]),
        "lightning_wall_s": median(walls["lightning"]),
        "lightning_walls_s": walls["lightning"],
        "lightning_ratio": median([a / b for a, b in zip(walls["lightning"], walls["hand"], strict=True)]),
        "compose_s_per_job": compose_seconds(losses),
        "per_run_s": wall / max(n, 1),
        "run_wall_median_s": median(run_walls),
        "outside_run_per_job_s": (walls["lossbench"][-1] - sum(run_walls)) / max(n, 1),
        "phases_median_s": {k: median(v) for k, v in phases.items()},
    }


# --- 4. loss kernels ------------------------------------------------------------------------------------
def bench_losses(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_losses.py"), "--device", args.device]
    if args.quick:
        cmd += ["--n", "16384", "--repeat", "3", "--no-memory"]
    wall, proc = timed_run(cmd, cwd=workdir, timeout=900)
    return {"command": " ".join(Path(c).name if c == sys.executable else c for c in cmd[1:]),
            "wall_s": wall, "output": proc.stdout.strip()}  # fmt: skip


# --- 5. CUDA: ResNet-18 images/s ------------------------------------------------------------------------
def bench_cuda_resnet(
    args: argparse.Namespace,
    device: str = "cuda",
    sizes: tuple[int, int, int, int] | None = None,
    workers: int | None = None,
    bf16: bool = False,
    channels_last: bool = False,
    loops: tuple[str, ...] = ("device", "dataloader"),
) -> dict[str, Any]:
    """ResNet-18 training images/s, data on the device vs a ``DataLoader`` with per-sample transforms.

    ``device``, ``sizes`` ``(images, batch, steps, warm-up steps)`` and ``workers`` exist so the tests can
    run this code on a CPU in seconds; the benchmark itself always measures CUDA at full size. ``bf16``
    (autocast) and ``channels_last`` set the precision and memory format of both loops; ``loops`` picks
    which of them run.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    from lossbench.data.transforms import PadCropFlip
    from lossbench.models import resnet18_cifar

    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    n, batch, steps, warmup = sizes or ((10_000, 128, 30, 10) if args.quick else (50_000, 128, 100, 10))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n,), generator=gen)

    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def train_steps(batches: Any) -> float:
        model = resnet18_cifar(input_shape=(3, 32, 32), num_outputs=10)
        model = model.to(device, memory_format=memory_format)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        it = iter(batches)
        start = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                sync(device)
                start = time.perf_counter()
            x, y = next(it)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x.contiguous(memory_format=memory_format)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        return steps * batch / (time.perf_counter() - start)

    def on_device() -> Any:
        xs, ys, aug = images.to(device), labels.to(device), PadCropFlip(mean, std)
        epoch = 0
        while True:
            order = torch.randperm(n, device=device)
            for i in range(0, n - batch + 1, batch):
                idx = order[i : i + batch]
                yield aug(xs[idx], epoch), ys[idx]
            epoch += 1

    class PerSample(Dataset):
        """CIFAR as torchvision serves it: per-sample crop/flip/normalise on the CPU, then collate."""

        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            x = F.pad(images[i].float().div(255), (4, 4, 4, 4))
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            x = x[:, dy : dy + 32, dx : dx + 32]
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
            m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
            return (x - m) / s, int(labels[i])

    def with_workers(workers: int) -> Any:
        cuda = device == "cuda"
        loader = DataLoader(
            PerSample(), batch_size=batch, shuffle=True, num_workers=workers, pin_memory=cuda,
            drop_last=True, persistent_workers=workers > 0,
        )  # fmt: skip
        while True:
            for x, y in loader:
                yield x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)

    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    result: dict[str, Any] = {
        "dataloader_workers": workers,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else device,
        "batch_size": batch,
    }
    if "device" in loops:
        result["images_per_s_on_device"] = train_steps(on_device())
    if "dataloader" in loops:
        result["images_per_s_dataloader"] = train_steps(with_workers(workers))
    if len(loops) == 2:
        result["ratio"] = result["images_per_s_on_device"] / result["images_per_s_dataloader"]
    return result


# --- 6. image folder: images/s ---------------------------------------------------------------------------
def write_image_folder(root: Path, n: int = FOLDER_IMAGES, classes: int = FOLDER_CLASSES) -> Path:
    """``n`` 32x32 RGB PNGs in ``classes`` class folders, each class a noisy colour."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (classes, 3))
    for i in range(n):
        c = i % classes
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(colours[c] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return root


def folder_overrides(root: Path, workers: int) -> list[str]:
    return ["data=image_folder", f"data.root={root}", "model=cnn", f"data.num_workers={workers}",
            f"data.batch_size={FOLDER_BATCH}"]  # fmt: skip


def hand_folder_loop(device: str, root: Path, epochs: int, workers: int, seed: int = 0) -> dict[str, Any]:
    """The baseline: torchvision ``ImageFolder`` + ``DataLoader`` + a plain loop (same split, transforms)."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    from lossbench.models import build_model

    torch.use_deterministic_algorithms(device == "cpu", warn_only=True)  # as trainer=cpu / trainer=gpu
    cfg = compose(*folder_overrides(root, workers), f"seed={seed}")
    L.seed_everything(seed, workers=True, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")  # for the training indices and the transforms only
    train = dm.dataset("train")
    dataset = Subset(
        ImageFolder(str(root), transform=v2.Compose([train.transform, train.finish])), train.indices
    )
    cuda = device == "cuda"
    loader = DataLoader(
        dataset, batch_size=FOLDER_BATCH, shuffle=True, num_workers=workers, pin_memory=cuda,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    model = build_model(cfg.model, input_shape=dm.input_shape, num_outputs=dm.num_classes).to(device)
    optimizer = instantiate(cfg.optim.optimizer)(model.parameters())
    epochs_out = []
    for _ in range(epochs):
        sync(device)
        start, steps = time.perf_counter(), 0
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        sync(device)
        epochs_out.append({"train_s": time.perf_counter() - start, "steps": steps})
    return {"epochs": epochs_out, "n_train": len(dataset)}


def images_per_s(epochs: list[dict[str, float]], n_train: int) -> float:
    """Median training images/s over the epochs after the first (worker start-up)."""
    return median([n_train / e["train_s"] for e in epochs[1:] or epochs])


def bench_image_folder(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    root = write_image_folder(workdir / "images")
    epochs = 3 if args.quick else 5
    workers = min(4, os.cpu_count() or 1)
    runs: dict[str, list[float]] = {"lossbench": [], "hand": []}
    n_train = 0
    for r in range(args.repeats):
        order = ("hand", "lossbench") if r % 2 == 0 else ("lossbench", "hand")
        for name in order:
            if name == "hand":
                hand = hand_folder_loop(args.device, root, epochs, workers)
                n_train = hand["n_train"]
                runs["hand"].append(images_per_s(hand["epochs"], n_train))
            else:
                overrides = [*folder_overrides(root, workers), "logger=csv"]
                result = lossbench_run(args.device, epochs, workdir / f"run{r}", *overrides)
                info = json.loads((workdir / f"run{r}" / "run" / "metrics.json").read_text())["data_info"]
                runs["lossbench"].append(images_per_s(result["epochs"], info["n_train"]))
    return {
        "images": FOLDER_IMAGES,
        "n_train": n_train,
        "epochs": epochs,
        "workers": workers,
        "batch_size": FOLDER_BATCH,
        "images_per_s": median(runs["lossbench"]),
        "hand_images_per_s": median(runs["hand"]),
        "each": {k: [round(v, 1) for v in vs] for k, vs in runs.items()},
        "ratio": median([a / b for a, b in zip(runs["lossbench"], runs["hand"], strict=True)]),
    }


# --- 7. the comparison report over a large sweep --------------------------------------------------------
REPORT_SHAPE = (22, 10, 6)  # losses × replicates × settings = 1,320 runs


def write_fake_sweep(root: Path, losses: int, replicates: int, settings: int, seed: int = 0) -> int:
    """Run directories with ``metrics.json`` + overrides, as a sweep leaves them (no training)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = ["ce", *(f"loss{i}" for i in range(losses - 1))]
    job = 0
    for setting in range(settings):
        for loss in names:
            for rep in range(replicates):
                d = root / str(job)
                (d / ".hydra").mkdir(parents=True)
                overrides = f"- loss={loss}\n- seed={rep}\n- data.imbalance_factor={setting + 1}\n"
                (d / ".hydra" / "overrides.yaml").write_text(overrides)
                acc = 0.9 + 0.01 * rng.standard_normal()
                test = {
                    f"test/{m}": acc + 0.01 * rng.standard_normal() for m in ("acc", "bal_acc", "f1", "nll")
                }
                metrics = {
                    "status": "ok",
                    "loss": loss,
                    "data": "digits",
                    "seed": rep,
                    "data_seed": 0,
                    "test": test,
                    "monitor": {"metric": "val/acc", "mode": "max", "best": acc},
                }
                (d / "metrics.json").write_text(json.dumps(metrics))
                job += 1
    return job


def bench_report(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    root = workdir / "report_sweep"
    runs = write_fake_sweep(root, *REPORT_SHAPE)
    cli = [sys.executable, "-m", "lossbench.cli", "compare", str(root), "--no-log-wandb"]
    walls: dict[str, list[float]] = {"no_plots": [], "plots": []}
    for _ in range(args.repeats):
        walls["no_plots"].append(timed_run([*cli, "--no-plots"], cwd=workdir)[0])
        walls["plots"].append(timed_run(cli, cwd=workdir)[0])
    return {"runs": runs, "shape": REPORT_SHAPE, **{f"{k}_s": median(v) for k, v in walls.items()}}


# --- 8. tuning trials per minute with two workers ---------------------------------------------------------
def trials_per_minute(out: Path) -> float:
    """Finished trials per minute of wall time between the first trial's start and the last one's end."""
    import optuna

    storage = f"sqlite:///{out / 'study.db'}"
    trials = [
        t
        for s in optuna.get_all_study_summaries(storage)
        for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
        if t.datetime_complete is not None
    ]
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return len(trials) / (span.total_seconds() / 60)


def bench_tune_workers(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    trials = 4 if args.quick else 8
    rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.repeats):
        for workers in (1, 2):
            out = workdir / f"tune{r}_{workers}"
            cmd = [
                sys.executable,
                "-m",
                "lossbench.cli",
                "tune",
                "--loss",
                "ce,focal",
                "--trials",
                str(trials),
            ]
            cmd += ["--seeds", "1", "--workers", str(workers), "--out", str(out), "trainer.max_epochs=5"]
            timed_run([*cmd, "logger=none", "callbacks.rich_progress_bar=null"], cwd=workdir)
            rates[workers].append(trials_per_minute(out))
    one, two = median(rates[1]), median(rates[2])
    return {"trials": trials, "one_worker_per_min": one, "two_workers_per_min": two, "ratio": two / one}


# --- 9. a shared machine: OpenMP's wait policy ----------------------------------------------------------
def busy_processes(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy (another user's work on a shared machine)."""
    spin = "import time\nwhile True: sum(range(10_000))"
    return [subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.DEVNULL) for _ in range(n)]


def bench_shared_machine(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Wall time of ``python train.py logger=csv`` with lossbench's wait-policy choice (no OMP_WAIT_POLICY
    set: :func:`lossbench.threads.choose_wait_policy` decides) and with OpenMP's own default (an empty
    value), on an idle machine and with one busy process per core beside it; pairs alternate the order."""
    policies = {"lossbench": None, "openmp_default": ""}
    walls: dict[str, list[float]] = {f"{load}_{p}": [] for load in ("idle", "busy") for p in policies}
    for load in ("idle", "busy"):
        burners = busy_processes(os.cpu_count() or 2) if load == "busy" else []
        try:
            for r in range(args.repeats):
                order = list(policies.items()) if r % 2 == 0 else list(policies.items())[::-1]
                for name, value in order:
                    cmd = train_cmd(*device_overrides(args.device), "logger=csv")
                    cmd.append(f"hydra.run.dir={workdir / f'{load}_{name}{r}'}")
                    if value is not None:
                        os.environ["OMP_WAIT_POLICY"] = value
                    try:
                        walls[f"{load}_{name}"].append(timed_run(cmd, cwd=workdir)[0])
                    finally:
                        os.environ.pop("OMP_WAIT_POLICY", None)
        finally:
            for proc in burners:
                proc.kill()
                proc.wait()
    result: dict[str, Any] = {
        k: {"median_s": median(v), "each_s": [round(w, 3) for w in v]} for k, v in walls.items()
    }
    for load in ("idle", "busy"):
        result[f"{load}_ratio"] = (
            result[f"{load}_lossbench"]["median_s"] / result[f"{load}_openmp_default"]["median_s"]
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="2 repeats, smaller loss-kernel sizes")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 2)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the step-time runs (default 20)")
    parser.add_argument(
        "--only", default=",".join(ITEMS), help=f"comma-separated subset of {','.join(ITEMS)}"
    )
    parser.add_argument("--no-lightning", action="store_true", help="skip the plain-Lightning reference")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 3)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(only) - set(ITEMS))
    if unknown:
        parser.error(f"--only: unknown item(s) {', '.join(unknown)}; choose from {', '.join(ITEMS)}")
    sys.path.insert(0, str(ROOT / "src"))
    importlib.import_module("lossbench")  # before torch, as in train.py
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench.py --device cuda: no CUDA device is visible (torch.cuda.is_available() is False)")
        raise SystemExit(2)

    results: dict[str, Any] = {
        "device": args.device,
        "quick": args.quick,
        "repeats": args.repeats,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
    }
    steps = {
        "step": bench_step,
        "startup": bench_startup,
        "sweep": bench_sweep,
        "losses": bench_losses,
        "image_folder": bench_image_folder,
        "report": bench_report,
        "tune_workers": bench_tune_workers,
        "shared": bench_shared_machine,
        "ddp": bench_ddp.bench_ddp,
        "packed": bench_packed.bench_packed,
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lossbench-bench-") as tmp:
        for name in only:
            t0 = time.perf_counter()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            if name == "cuda":
                if args.device != "cuda":
                    continue
                results[name] = bench_cuda_resnet(args)
            else:
                workdir = Path(tmp) / name
                workdir.mkdir()
                results[name] = steps[name](args, workdir)
            print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    results["total_s"] = time.perf_counter() - start
    if hasattr(os, "getloadavg"):
        results["machine"]["load_average_end"] = os.getloadavg()[0]
    text = bench_packed.with_row(bench_ddp.with_row(markdown(results), results), results)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}", "latest"):
        (args.out / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
        (args.out / f"{name}.md").write_text(text)
    print(text)
    print(f"written to {args.out}/bench-{stamp}.{{md,json}} in {results['total_s']:.0f} s")


if __name__ == "__main__":
    main()
