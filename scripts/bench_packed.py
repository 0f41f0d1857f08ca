"""Packed against sequential, as a user runs them: the same multirun with ``hydra/launcher=packed`` and with
Hydra's basic launcher (one job after another), timed back to back as whole commands (imports, Hydra's
composition, training, every run dir written, the sweep's table), and against ``scripts/hand_sweep.py``
(the same runs as a plain PyTorch script, one after another in one process).

    python scripts/bench_packed.py                       # 8 losses x 5 seeds, 10 epochs, logger=csv + default
    python scripts/bench_packed.py --losses ce,focal --seeds 1 --epochs 1 --loggers csv --no-hand

``make bench`` runs it as its ``packed`` item. Pairs alternate which command runs first; each ratio is the
median over pairs. Prints one JSON line: the walls, the ratios, the machine's load, and the largest
difference between a packed job's test accuracy and the same job's in the sequential sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

import bench  # noqa: E402
from bench_render import insert_rows  # noqa: E402

from lossbench.record import read_record  # noqa: E402

#: the classification losses ``make bench``'s sweep item uses, and the seeds
LOSSES = ("ce", "focal", "bce", "mse", "huber", "asl", "balanced_softmax", "brier")
SEEDS, EPOCHS = 5, 10
#: the bars: packed vs sequential (logger=csv), packed vs sequential (default loggers), hand vs packed
TARGETS = {"csv": 8.0, "default": 5.0, "hand": 4.0}


def timed(cmd: list[str], cwd: Path) -> float:
    """Seconds ``cmd`` takes to run in ``cwd`` (``bench.timed_run``, without a time limit)."""
    return bench.timed_run(cmd, cwd, timeout=None)[0]


def sweep_cmd(
    losses: list[str], seeds: int, epochs: int, logger: str, sweep_dir: Path, packed: bool
) -> list[str]:
    overrides = [f"loss={','.join(losses)}", f"seed={','.join(str(s) for s in range(seeds))}"]
    overrides += [] if logger == "default" else [f"logger={logger}"]
    overrides += [
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    launcher = ["hydra/launcher=packed"] if packed else []
    return [sys.executable, str(ROOT / "train.py"), "-m", *launcher, *overrides]


def test_accuracies(sweep_dir: Path) -> dict[tuple[str, int], float]:
    found = {}
    for path in sweep_dir.glob("*/metrics.json"):
        record = read_record(path.parent)
        if record.ok:
            found[(record.loss, record.seed)] = record.test["test/acc"]
    return found


def measure(
    losses: list[str], seeds: int, epochs: int, loggers: list[str], repeats: int, hand: bool, workdir: Path
) -> dict[str, Any]:
    """Walls and ratios of the packed and sequential sweeps (per logger config) and of ``hand_sweep.py``."""
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result: dict[str, Any] = {"losses": losses, "seeds": seeds, "epochs": epochs, "runs": len(losses) * seeds}
    gaps: list[float] = []
    packed_walls: list[float] = []
    for logger in loggers:
        walls: dict[str, list[float]] = {"packed": [], "sequential": []}
        for r in range(repeats if logger == "csv" else 1):
            order = ("packed", "sequential") if r % 2 == 0 else ("sequential", "packed")
            dirs = {name: workdir / f"{logger}-{name}-{r}" for name in order}
            for name in order:
                cmd = sweep_cmd(losses, seeds, epochs, logger, dirs[name], packed=name == "packed")
                walls[name].append(timed(cmd, workdir))
            packed, sequential = test_accuracies(dirs["packed"]), test_accuracies(dirs["sequential"])
            gaps += [abs(packed[key] - sequential[key]) for key in sequential if key in packed]
            result.setdefault("ok_runs", {})[logger] = [len(packed), len(sequential)]
        ratios = [s / p for s, p in zip(walls["sequential"], walls["packed"], strict=True)]
        result[logger] = {f"{k}_s": [round(w, 2) for w in v] for k, v in walls.items()}
        result[logger]["ratio"] = round(statistics.median(ratios), 2)
        if logger == "csv":
            packed_walls = walls["packed"]
    if hand and packed_walls:
        cmd = [sys.executable, str(ROOT / "scripts" / "hand_sweep.py"), "--losses", ",".join(losses)]
        cmd += ["--seeds", str(seeds), "--epochs", str(epochs)]
        hand_walls = [timed(cmd, workdir) for _ in packed_walls]
        result["hand_s"] = [round(w, 2) for w in hand_walls]
        result["hand_ratio"] = round(
            statistics.median([h / p for h, p in zip(hand_walls, packed_walls, strict=True)]), 2
        )
    result["max_test_acc_difference"] = max(gaps) if gaps else None
    result["load_average"] = [load_start, os.getloadavg()[0] if hasattr(os, "getloadavg") else None]
    result["cpu_count"] = os.cpu_count()
    return result


def bench_packed(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``make bench``'s ``packed`` item: 8 losses x 5 seeds, 10 epochs; logger=csv in ``repeats - 1``
    pairs (at least one), the default loggers in one pair (not with ``--quick``), and hand_sweep.py."""
    loggers = ["csv"] if args.quick else ["csv", "default"]
    repeats = max(1, args.repeats - 1)
    return measure(list(LOSSES), SEEDS, EPOCHS, loggers, repeats, hand=True, workdir=workdir)


def verdict(value: float, target: float) -> str:
    return "✅" if value >= target else "❌"


def markdown_rows(result: dict[str, Any]) -> list[str]:
    """The item's rows of ``bench.py``'s table."""
    what = f"{len(result['losses'])} losses × {result['seeds']} seeds, {result['epochs']} epochs"
    rows = []
    for logger in ("csv", "default"):
        if logger not in result:
            continue
        r = result[logger]
        packed, sequential = statistics.median(r["packed_s"]), statistics.median(r["sequential_s"])
        rows.append(
            f"| packed | `hydra/launcher=packed` sweep, {what}, logger={logger} | {packed:.1f} s "
            f"| the same sweep, basic launcher {sequential:.1f} s | {r['ratio']:.2f}× faster "
            f"| ≥ {TARGETS[logger]:g}× | {verdict(r['ratio'], TARGETS[logger])} |"
        )
    if "hand_ratio" in result:
        hand = statistics.median(result["hand_s"])
        rows.append(
            f"| packed | the packed sweep (logger=csv) vs plain PyTorch one run after another | "
            f"{statistics.median(result['csv']['packed_s']):.1f} s | `scripts/hand_sweep.py` {hand:.1f} s "
            f"| {result['hand_ratio']:.2f}× faster | ≥ {TARGETS['hand']:g}× | "
            f"{verdict(result['hand_ratio'], TARGETS['hand'])} |"
        )
    return rows


def with_row(text: str, results: dict[str, Any]) -> str:
    """``bench.py``'s markdown ``text`` with this item's rows after the last row of its first table."""
    return insert_rows(text, markdown_rows(results["packed"])) if "packed" in results else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma-separated loss configs")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds 0..N-1 of each loss")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--loggers", default="csv,default", help="logger configs to time (csv, default)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs with logger=csv")
    parser.add_argument("--no-hand", action="store_true", help="skip scripts/hand_sweep.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lossbench-bench-packed-") as tmp:
        result = measure(
            args.losses.split(","),
            args.seeds,
            args.epochs,
            args.loggers.split(","),
            args.repeats,
            hand=not args.no_hand,
            workdir=Path(tmp),
        )
    print("\n".join(markdown_rows(result)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
