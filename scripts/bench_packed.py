"""Packed against one-by-one: the wall time of K runs trained one after another and of the same K runs
trained packed in one process (``lossbench.packed``), back to back in this process.

    python scripts/bench_packed.py --losses ce,focal,sce,gce --seeds 2 --epochs 20 --logger csv

Each unpacked run is ``lossbench.run.run`` (what ``python train.py`` runs: loggers, checkpoints, test,
``metrics.json``); the packed group is ``lossbench.packed.fit_packed`` on the same composed configs, which
trains, picks each replica's best epoch and tests it, but writes no run directories yet (so its time
leaves out the per-run files a launcher would write). Prints one JSON line: both wall times, their ratio
and the largest difference between a packed replica's test accuracy and its run's. The unpacked runs go
first, so the packed group does not pay for the imports' first use.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from lossbench.config import compose_run
from lossbench.packed import fit_packed
from lossbench.run import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="ce,focal,sce,gce", help="comma-separated loss configs")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 of each loss")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--logger", default="csv", help="the unpacked runs' logger config (csv, none, default)"
    )
    parser.add_argument("--data", default="digits")
    args = parser.parse_args()
    jobs = [(loss, seed) for loss in args.losses.split(",") for seed in range(args.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        common = [
            f"data={args.data}",
            f"trainer.max_epochs={args.epochs}",
            "callbacks.rich_progress_bar=null",
        ]

        def cfgs(kind: str, logger: str) -> list:
            return [
                compose_run(
                    [f"loss={loss}", f"seed={seed}", f"logger={logger}", *common],
                    output_dir=Path(tmp) / kind / f"{loss}_{seed}",
                )
                for loss, seed in jobs
            ]

        start = time.perf_counter()
        records = [run(cfg, overrides=[]) for cfg in cfgs("unpacked", args.logger)]
        unpacked_s = time.perf_counter() - start
        start = time.perf_counter()
        results = fit_packed(cfgs("packed", "none"))
        packed_s = time.perf_counter() - start
    gaps = [
        abs(r["test"]["test/acc"] - rec["test"]["test/acc"]) for r, rec in zip(results, records, strict=True)
    ]
    print(
        json.dumps(
            {
                "runs": len(jobs),
                "epochs": args.epochs,
                "logger": args.logger,
                "unpacked_s": round(unpacked_s, 2),
                "packed_s": round(packed_s, 2),
                "speedup": round(unpacked_s / packed_s, 2),
                "max_test_acc_difference": max(gaps),
            }
        )
    )


if __name__ == "__main__":
    main()
