"""The GPU checks of ``scripts/device_check.sh``: one table, every row "ran" or "not run" with the reason.

    python scripts/device_check.py                  # on a machine with a CUDA GPU, ~5 min on an H200
    python scripts/device_check.py --device cpu --tiny   # the code paths on a CPU (minutes; float32)
    python scripts/device_check.py --only resnet18,limit  # some rows

Rows (each lossbench run is ``python train.py`` in a subprocess with its own time limit):

1. ``default``: the default run (digits, MLP) with ``trainer=gpu``: wall time and step time.
2. ``resnet18``: ResNet-18 on CIFAR-10-shaped data (written in CIFAR's own file format: no download),
   ``trainer.precision=bf16-mixed model.channels_last=true``: training images/s, against a plain
   PyTorch loop over a ``DataLoader`` (per-sample crop/flip, workers, pinned memory) with the same
   precision and memory format.
3. ``compile``: row 2 with ``model.compile=true`` (compilation included in the wall time, excluded from
   the images/s of the epochs after the first).
4. ``ddp1``: the default run under DDP on one GPU (``trainer=ddp trainer.devices=1``).
5. ``nan_guard``: row 2's step time with the NaN/Inf guard read every step
   (``nonfinite_check.every_n_steps=1``, one device sync per step) against the default (every 100).
6. ``limit``: what the device does with the same network and no framework: lossbench's
   ``resnet18_cifar`` (built by :func:`lossbench.models.build_model`), one AdamW step per batch on
   device-resident tensors, bf16 autocast and channels_last, no loader and no Lightning, at batch 128 and
   512 (``--tiny``: 8 and 16); row 2's images/s (and row 3's) as a share of it at row 2's batch size.
7. ``packed``: 16 ResNet-32 replicas (4 losses × 4 seeds; ``--tiny``: 4) trained as one packed model
   against the same runs one by one, in runs/hour, and the packed fit's images/s against its own
   device-resident limit, peak memory beside each (``scripts/device_packed.py``).

Writes ``device_check.json`` beside ``--out`` (default ``benchmarks/results/``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import bench  # noqa: E402

from lossbench.record import read_record  # noqa: E402

TIMER = bench.TIMER


def lossbench(device: str, workdir: Path, *overrides: str, timeout: float = 240) -> dict[str, Any]:
    """One ``train.py`` run; its wall time, step times and ``metrics.json``."""
    out = workdir / "run"
    trainer = ["trainer=gpu"] if device == "cuda" else []
    if any(o.startswith("trainer=") for o in overrides):
        trainer = []
    cmd = [sys.executable, str(ROOT / "train.py"), *trainer, "logger=csv", TIMER, f"hydra.run.dir={out}"]
    wall, _ = bench.timed_run([*cmd, *overrides], cwd=workdir, timeout=timeout)
    times = json.loads((out / "step_times.json").read_text())
    return {"wall_s": wall, **times, "metrics": read_record(out).to_dict()}


def images_per_s(result: dict[str, Any], batch_size: int) -> float:
    """Training images/s over the epochs after the first (compilation and warm-up excluded)."""
    epochs = result["epochs"][1:] or result["epochs"]
    return sum(e["steps"] for e in epochs) * batch_size / sum(e["train_s"] for e in epochs)


def limit_images_per_s(device: str, batch: int, steps: int, warmup: int, bf16: bool = True) -> float:
    """Images/s of ``resnet18_cifar`` alone: one AdamW step per batch on tensors already on ``device``,
    bf16 autocast (unless ``bf16=False``), channels_last (the ``limit`` row)."""
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lossbench.config import CONFIG_DIR
    from lossbench.models import build_model

    torch.manual_seed(0)
    cfg = OmegaConf.merge(OmegaConf.load(CONFIG_DIR / "model" / "resnet18.yaml"), {"channels_last": True})
    model = build_model(cfg, input_shape=(3, 32, 32), num_outputs=10).to(device)
    optimizer = instantiate(OmegaConf.load(CONFIG_DIR / "optim" / "adam.yaml").optimizer)(model.parameters())
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    bench.sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    bench.sync(device)
    return steps * batch / (time.perf_counter() - start)


def compile_seconds(result: dict[str, Any]) -> float:
    """The first epoch's extra training time over the later epochs' median: compilation and warm-up."""
    times = [e["train_s"] for e in result["epochs"]]
    return times[0] - bench.median(times[1:]) if len(times) > 1 else float("nan")


def fake_cifar(root: Path, per_batch: int, n_test: int) -> None:
    from tests.fake_vision import write_cifar

    write_cifar(root, "cifar10", per_batch=per_batch, n_test=n_test)


def plain_loop(device: str, n: int, batch: int, steps: int, workers: int, bf16: bool = True) -> float:
    """Images/s of a plain PyTorch loop over a ``DataLoader`` (per-sample crop/flip, workers, pinned
    memory) with bf16 autocast (unless ``bf16=False``) and channels_last: ``make bench``'s ResNet-18
    baseline at this precision."""
    args = argparse.Namespace(quick=False)
    result = bench.bench_cuda_resnet(
        args, device, (n, batch, steps, 3), workers, bf16=bf16, channels_last=True, loops=("dataloader",)
    )
    return result["images_per_s_dataloader"]


def attempt(rows: list[dict[str, Any]], name: str, measure: str, fn: Any) -> None:
    """Run ``fn() -> (value text, baseline text, ratio text)``; record the row as ran or not run."""
    t0 = time.perf_counter()
    print(f"[device_check] {name} ...", file=sys.stderr, flush=True)
    try:
        value, baseline, ratio = fn()
        rows.append({"row": name, "measure": measure, "value": value, "baseline": baseline,
                     "ratio": ratio, "status": "ran"})  # fmt: skip
    except Exception as err:  # a failing row must not hide the others
        reason = str(err).strip().splitlines()[-1][:160] if str(err).strip() else type(err).__name__
        rows.append({"row": name, "measure": measure, "value": "", "baseline": "", "ratio": "",
                     "status": f"not run: {reason}"})  # fmt: skip
    print(f"[device_check] {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the code paths, not speed")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--only", default="", help="comma-separated rows to run (default: all)")
    args = parser.parse_args()
    import torch

    rows: list[dict[str, Any]] = []
    names = ("default", "resnet18", "compile", "ddp1", "nan_guard", "limit", "packed")
    measures = {
        "default": "default run (digits, MLP)",
        "resnet18": "ResNet-18, CIFAR-shaped, bf16-mixed + channels_last, images/s",
        "compile": "same with model.compile=true, images/s",
        "ddp1": "default run, DDP on 1 GPU",
        "nan_guard": "ResNet-18 step time, NaN guard read every step vs every 100",
        "limit": "resnet18_cifar alone: AdamW steps on device tensors, bf16, channels_last, images/s",
        "packed": "16 ResNet-32 replicas packed vs one by one, runs/hour; images/s vs the packed limit",
    }
    only = [n.strip() for n in args.only.split(",") if n.strip()] or list(names)
    if unknown := sorted(set(only) - set(names)):
        parser.error(f"--only: unknown row(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        rows = [{"row": n, "measure": measures[n], "value": "", "baseline": "", "ratio": "",
                 "status": "not run: no CUDA GPU visible"} for n in names]  # fmt: skip
        print(table(rows, "no CUDA GPU"))
        return
    dev = args.device
    # --tiny: 100 training images (5 batches of 20) and 30 test images, about the fewest the splits take
    per_batch, n_test, epochs, batch = (20, 30, 2, 8) if args.tiny else (9000, 1800, 3, 128)
    # a CPU without bf16 instructions emulates bf16 (a ResNet-18 step ~40x slower than float32): on a CPU,
    # --tiny runs the ResNet rows' code paths in float32
    bf16 = not (args.tiny and dev == "cpu")
    if not bf16:
        tiny_cpu = "float32 (--tiny on a CPU)"
        for name in ("resnet18", "limit"):
            measures[name] = measures[name].replace("bf16-mixed", tiny_cpu).replace("bf16", tiny_cpu)
    gpu = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    resnet = ["data=cifar10", "model=resnet18", f"trainer.max_epochs={epochs}", "data.verify_checksums=false",
              f"data.batch_size={batch}", "callbacks.model_checkpoint=null"]  # fmt: skip
    precision = [f"trainer.precision={'bf16-mixed' if bf16 else '32-true'}", "model.channels_last=true"]
    with tempfile.TemporaryDirectory(prefix="lossbench-device-") as tmp:
        work = Path(tmp)
        fake_cifar(work / "data", per_batch, n_test)
        resnet.append(f"paths.data_dir={work / 'data'}")
        results: dict[str, Any] = {}
        figures: dict[str, Any] = {}  # the numbers behind the table, for device_check.json

        def default() -> tuple[str, str, str]:
            tiny = ["trainer.max_epochs=3"] if args.tiny else []  # the code path, not the figure
            r = results["default"] = lossbench(dev, work / "default", *tiny)
            return f"{r['wall_s']:.1f} s wall, {bench.step_ms(r):.3f} ms/step", "", ""

        def resnet18() -> tuple[str, str, str]:
            r = results["resnet18"] = lossbench(dev, work / "resnet", *resnet, *precision, timeout=300)
            ours = images_per_s(r, batch)
            workers = min(8, os.cpu_count() or 1) if not args.tiny else 0
            steps = 3 if args.tiny else 150
            plain = plain_loop(dev, per_batch * 5, batch, steps, workers, bf16)
            return (
                f"{ours:.0f}",
                f"plain DataLoader loop ({workers} workers) {plain:.0f}",
                f"{ours / plain:.2f}×",
            )

        def compiled() -> tuple[str, str, str]:
            if dev != "cuda":
                raise RuntimeError("torch.compile is checked on CUDA only")
            r = results["compile"] = lossbench(
                dev, work / "compile", *resnet, *precision, "model.compile=true", timeout=300
            )
            ours = images_per_s(r, batch)
            base = images_per_s(results["resnet18"], batch) if "resnet18" in results else float("nan")
            return (
                f"{ours:.0f} ({r['wall_s']:.0f} s wall; first epoch +{compile_seconds(r):.0f} s: compiling)",
                f"compile=false {base:.0f}",
                f"{ours / base:.2f}×",
            )

        def ddp1() -> tuple[str, str, str]:
            trainer = ["trainer=ddp" if dev == "cuda" else "trainer=ddp_cpu", "trainer.devices=1"]
            r = lossbench(dev, work / "ddp1", *trainer)
            base = results.get("default")
            ratio = f"{bench.step_ms(r) / bench.step_ms(base):.2f}×" if base else ""
            base_text = f"single device {bench.step_ms(base):.3f} ms/step" if base else ""
            return f"{r['wall_s']:.1f} s wall, {bench.step_ms(r):.3f} ms/step", base_text, ratio

        def nan_guard() -> tuple[str, str, str]:
            every = lossbench(dev, work / "guard", *resnet, *precision, "nonfinite_check.every_n_steps=1",
                              timeout=300)  # fmt: skip
            base = results["resnet18"]
            return (f"{bench.step_ms(every):.3f} ms/step", f"every 100: {bench.step_ms(base):.3f} ms/step",
                    f"{bench.step_ms(every) / bench.step_ms(base):.3f}×")  # fmt: skip

        def limit() -> tuple[str, str, str]:
            sizes = (batch, 2 * batch) if args.tiny else (batch, 4 * batch)
            steps, warmup = (2, 1) if args.tiny else (200, 20)
            rates = {b: limit_images_per_s(dev, b, steps, warmup, bf16) for b in sizes}
            if dev == "cuda":
                torch.cuda.empty_cache()  # the model and batches of the limit are gone
            figures["limit_images_per_s"] = rates
            value = "; ".join(f"{r:.0f} at batch {b} ({1000 * b / r:.2f} ms/step)" for b, r in rates.items())
            ours = {k: images_per_s(results[k], batch) for k in ("resnet18", "compile") if k in results}
            if not ours:
                return value, "", ""
            shares = {k: v / rates[batch] for k, v in ours.items()}
            figures["share_of_limit"] = shares
            baseline = ", ".join(f"{k} row {ours[k]:.0f} ({shares[k]:.2f})" for k in ours)
            share = next(iter(shares.values()))  # row 2's when it ran
            return value, f"lossbench at batch {batch}: {baseline}", f"{share:.2f} of it"

        def packed() -> tuple[str, str, str]:
            from device_packed import packed_row

            return packed_row(dev, work / "packed", work / "data", args.tiny, figures)

        steps = (default, resnet18, compiled, ddp1, nan_guard, limit, packed)
        for name, fn in zip(names, steps, strict=True):
            if name in only:
                attempt(rows, name, measures[name], fn)
    text = table(rows, gpu)
    args.out.mkdir(parents=True, exist_ok=True)
    versions = {"torch": torch.__version__, "lightning": _version("lightning")}
    date = time.strftime("%Y-%m-%d %H:%M")
    report = {"gpu": gpu, "date": date, **versions, "rows": rows, "figures": figures}
    (args.out / "device_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(text)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def table(rows: list[dict[str, Any]], gpu: str) -> str:
    import torch

    lines = [
        f"# lossbench device check ({gpu}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')})",
        "",
        "| row | measure | lossbench | baseline | ratio | |",
        "|---|---|---|---|---|---|",
    ]
    keys = ("row", "measure", "value", "baseline", "ratio", "status")
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
