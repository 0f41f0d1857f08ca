"""``make bench`` item ``ddp``: the default run's step time under DDP with one process against one device.

    python scripts/bench.py --only ddp
    python scripts/bench_ddp.py [--device cuda] [--repeats 3] [--epochs 20]

CPU: ``trainer=ddp_cpu trainer.devices=1`` against ``trainer=cpu``; ``--device cuda``: ``trainer=ddp
trainer.devices=1`` against ``trainer=gpu``. Both are ``python train.py`` runs with the default config,
their steps timed by :class:`lossbench.perf.StepTimer` (``bench.step_ms``: median ms/step over the epochs
after the first); the runs alternate, and the ratio is the median of each back-to-back pair's ratio.
Target: at most 1.15×.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
from bench_render import insert_rows  # noqa: E402

TARGET = 1.15
TRAINERS = {
    "cpu": (["trainer=cpu"], ["trainer=ddp_cpu", "trainer.devices=1"]),
    "cuda": (["trainer=gpu"], ["trainer=ddp", "trainer.devices=1"]),
}


def bench_ddp(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """ms/step of the default run with one DDP process and on one device, ``args.repeats`` pairs."""
    single, ddp = TRAINERS[args.device]
    runs: dict[str, list[dict[str, Any]]] = {"single": [], "ddp": []}
    for r in range(args.repeats):
        for name, trainer in (("single", single), ("ddp", ddp)):
            # device "cpu": the trainer override above chooses the device, not bench.device_overrides
            result = bench.lossbench_run("cpu", args.epochs, workdir / f"{name}{r}", *trainer, "logger=csv")
            runs[name].append(result)
    ratios = [bench.step_ms(d) / bench.step_ms(s) for s, d in zip(runs["single"], runs["ddp"], strict=True)]
    return {
        "device": args.device,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "single_trainer": " ".join(single),
        "ddp_trainer": " ".join(ddp),
        **{f"{k}_step_ms": bench.median([bench.step_ms(x) for x in v]) for k, v in runs.items()},
        **{f"{k}_step_ms_each": [round(bench.step_ms(x), 4) for x in v] for k, v in runs.items()},
        "ratio": bench.median(ratios),
        "ratio_each": [round(x, 3) for x in ratios],
    }


def markdown_row(result: dict[str, Any]) -> str:
    """The item's row of ``bench.py``'s table."""
    ratio, single = result["ratio"], result["single_step_ms"]
    return (
        f"| 10 | DDP with one process, default run (`{result['ddp_trainer']}`), {result['epochs']} epochs "
        f"| {result['ddp_step_ms']:.3f} ms/step | `{result['single_trainer']}` {single:.3f} ms/step "
        f"| {ratio:.2f}× | ≤ {TARGET}× | {'met' if ratio <= TARGET else 'MISSED'} |"
    )


def with_row(text: str, results: dict[str, Any]) -> str:
    """``bench.py``'s markdown ``text`` with this item's row after the last row of its first table."""
    return insert_rows(text, [markdown_row(results["ddp"])]) if "ddp" in results else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=sorted(TRAINERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lossbench-bench-ddp-") as tmp:
        result = bench_ddp(args, Path(tmp))
    print(markdown_row(result))
    print(f"each pair: {result['ratio_each']}")


if __name__ == "__main__":
    main()
