"""``lossbench advise`` on three CSV files a user could bring, each advised in turn.

    python scripts/advise_bars.py [--budget 15m] [--only digits_lt,diabetes_outliers,wine] [--out DIR]

- ``digits_lt``: scikit-learn's digits with a long-tailed training split (imbalance 20; val/test balanced,
  given by a ``split`` column). Expected: re-balancing losses on the shortlist, one of them recommended
  as better than ce on balanced accuracy.
- ``diabetes_outliers``: scikit-learn's diabetes with 15% of the training targets shifted by ±10 σ (val/test
  clean). Expected: a robust loss recommended over mse on MAE.
- ``wine``: scikit-learn's wine, clean and balanced. Expected: the baseline, or a loss called equivalent.
- ``rare_5k``: 5,000 rows of scikit-learn's ``make_classification`` (20 features, 3.5% positives, 1% of
  the labels flipped). Expected: a recommendation within 1.1x ``--budget`` (``--budget 4m``: 264 s), the
  plan shrunk to what the budget fits.

Each data set is written as a CSV under ``DIR`` and advised with ``lossbench advise data=table ...``; the
script prints each recommendation and writes ``DIR/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets

from lossbench.data.splits import split_indices
from lossbench.data.stressors import contaminate_targets, imbalance_indices

EXPECTED = {
    "digits_lt": "a re-balancing loss called better than ce on test/bal_acc",
    "diabetes_outliers": "a robust loss (huber, l1, cauchy) called better than mse on test/mae",
    "wine": "ce, or a loss called equivalent to it (no false winner)",
    "rare_5k": "a recommendation within 1.1x --budget",
}


def split_column(n: int, train: np.ndarray, val: np.ndarray) -> np.ndarray:
    names = np.full(n, "test", dtype=object)
    names[train], names[val] = "train", "val"
    return names


def digits_lt(path: Path) -> list[str]:
    x, y = datasets.load_digits(return_X_y=True)
    train, val, test = split_indices(y, 0.2, 0.2, 0, stratify=True)
    kept = imbalance_indices(train, y, 10, 20.0, np.random.default_rng(0))
    rows = np.sort(np.concatenate([kept, val, test]))
    frame = pd.DataFrame(x[rows], columns=[f"p{i}" for i in range(64)]).assign(label=y[rows])
    frame["split"] = split_column(len(y), kept, val)[rows]
    frame.to_csv(path, index=False)
    return ["data.target=label", "data.split_column=split"]


def diabetes_outliers(path: Path) -> list[str]:
    x, y = datasets.load_diabetes(return_X_y=True)
    train, val, _ = split_indices(y, 0.2, 0.2, 0, stratify=False)
    y = y.copy()
    y[train], _ = contaminate_targets(y[train], 0.15, 10.0, np.random.default_rng(0))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(target=y)
    frame["split"] = split_column(len(y), train, val)
    frame.to_csv(path, index=False)
    return ["data.target=target", "data.task=regression", "data.split_column=split"]


def wine(path: Path) -> list[str]:
    x, y = datasets.load_wine(return_X_y=True)
    pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(label=y).to_csv(path, index=False)
    return ["data.target=label"]


def rare_5k(path: Path) -> list[str]:
    x, y = datasets.make_classification(
        n_samples=5000, n_features=20, n_informative=8, weights=[0.97], flip_y=0.01, random_state=0
    )
    pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(label=y).to_csv(path, index=False)
    return ["data.target=label"]


BUILDERS = {"digits_lt": digits_lt, "diabetes_outliers": diabetes_outliers, "wine": wine, "rare_5k": rare_5k}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--only", default=",".join(BUILDERS))
    parser.add_argument("--out", default="advise_bars")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in args.only.split(","):
        csv = out / f"{name}.csv"
        overrides = ["data=table", f"data.path={csv}", *BUILDERS[name](csv)]
        command = [sys.executable, "-m", "lossbench.cli", "advise", *overrides, "--budget", args.budget,
                   "--workers", str(args.workers), "--out", str(out / name)]  # fmt: skip
        print("$", " ".join(command[1:]), flush=True)
        load = os.getloadavg()
        started = time.monotonic()
        proc = subprocess.run(command, text=True, capture_output=True)
        wall_s = time.monotonic() - started
        print(proc.stdout[-2000:], proc.stderr[-2000:] if proc.returncode else "", flush=True)
        result_path = out / name / "recommendation.json"
        result = json.loads(result_path.read_text()) if result_path.is_file() else {}
        summary[name] = {
            "exit": proc.returncode,
            "wall_s": round(wall_s, 1),
            "budget_s": result.get("plan", {}).get("budget_s"),
            "load_before": load,
            "load_after": os.getloadavg(),
            "lines": len(proc.stdout.splitlines()) + len(proc.stderr.splitlines()),
            "expected": EXPECTED[name],
            "loss": result.get("loss"),
            "recommendation": result.get("recommendation"),
            "shortlist": [c["loss"] for c in result.get("shortlist", [])],
            "profile": result.get("profile"),
            "plan": result.get("plan"),
        }
        print(
            f"{name}: {summary[name]['recommendation']} (expected: {EXPECTED[name]}); {wall_s:.0f} s wall, "
            f"load {load[0]:.2f} before, {summary[name]['load_after'][0]:.2f} after",
            flush=True,
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
