"""Check the report's verdict rules by simulation: false claims under the null, power, equivalence.

Each simulated *setting* is one family of comparisons as the report makes them: ``k`` losses, the first
the baseline, ``n`` replicates each, every loss compared with the baseline on paired replicates
(:func:`lossbench.report.verdict.verdicts`, Holm over the ``k − 1`` comparisons). Scenarios (metric in
rate units, 1 point = 0.01):

* ``null`` — every loss's score drawn from one distribution: share of settings where *any* loss is called
  ``better`` or ``worse`` (the family-wise error rate), which must be ≤ alpha (5%) within simulation error;
* ``power`` — one loss with a true paired gain of 1 point, paired-difference std 0.5 point: share of
  settings where it is called ``better`` (target ≥ 80%);
* ``equivalence`` — one loss with a true gain of 0 and paired-difference std 0.1 point: share called
  ``equivalent`` (target ≥ 80%);
* ``false_equivalence`` — a true gain of 2 ROPEs: share called ``equivalent`` (must be ≤ alpha).

``python scripts/validate_stats.py [--sims 1000] [--test t|wilcoxon] [--json out.json]``; exit status 1 when
a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lossbench.report.verdict import DEFAULT_ALPHA, DEFAULT_ROPE, verdicts  # noqa: E402

POINT = 0.01


def null_scenario(rng, sims: int, losses: int, replicates: int, test: str) -> float:
    """Share of settings with any better/worse call when no loss differs (scores iid, std 1 point)."""
    hits = 0
    for _ in range(sims):
        scores = 0.9 + POINT * rng.standard_normal((losses, replicates))
        gains = scores[1:] - scores[0]
        verdict, _, _ = verdicts(gains, DEFAULT_ROPE, DEFAULT_ALPHA, test)
        hits += bool(np.isin(verdict, ("better", "worse")).any())
    return hits / sims


def one_loss_differs(
    rng, sims: int, losses: int, replicates: int, gain: float, sd: float, test: str, want: str
) -> float:
    """Share of settings where the loss with a true paired ``gain`` (paired std ``sd``) gets ``want``;
    the other losses have no gain, with the same paired std."""
    hits = 0
    for _ in range(sims):
        gains = sd * rng.standard_normal((losses - 1, replicates))
        gains[0] += gain
        verdict, _, _ = verdicts(gains, DEFAULT_ROPE, DEFAULT_ALPHA, test)
        hits += verdict[0] == want
    return hits / sims


def simulate(sims: int = 1000, test: str = "t", seed: int = 0) -> dict[str, dict[str, float]]:
    """Every scenario's observed rate and its target (``max`` or ``min``)."""
    rng = np.random.default_rng(seed)
    # alpha within simulation error: 1.5 points at 1,000 simulations (~2 binomial std), wider for fewer
    slack = max(0.015, 2 * float(np.sqrt(DEFAULT_ALPHA * (1 - DEFAULT_ALPHA) / sims)))
    return {
        "null": {
            "rate": null_scenario(rng, sims, losses=20, replicates=5, test=test),
            "max": DEFAULT_ALPHA + slack,
        },
        "power": {
            "rate": one_loss_differs(rng, sims, 10, 10, 1 * POINT, 0.5 * POINT, test, "better"),
            "min": 0.80,
        },
        "equivalence": {
            "rate": one_loss_differs(rng, sims, 10, 10, 0.0, 0.1 * POINT, test, "equivalent"),
            "min": 0.80,
        },
        "false_equivalence": {
            "rate": one_loss_differs(rng, sims, 10, 10, 2 * DEFAULT_ROPE, 0.5 * POINT, test, "equivalent"),
            "max": DEFAULT_ALPHA + slack,
        },
    }


def failures(results: dict[str, dict[str, float]]) -> list[str]:
    bad = []
    for name, r in results.items():
        if "max" in r and r["rate"] > r["max"]:
            bad.append(f"{name}: {r['rate']:.3f} > {r['max']:.3f}")
        if "min" in r and r["rate"] < r["min"]:
            bad.append(f"{name}: {r['rate']:.3f} < {r['min']:.3f}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--test", choices=("t", "wilcoxon"), default="t")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = simulate(args.sims, args.test, args.seed)
    for name, r in results.items():
        bound = f"<= {r['max']:.3f}" if "max" in r else f">= {r['min']:.2f}"
        print(f"{name:18s} {r['rate']:.3f}  (target {bound})")
    if args.json:
        args.json.write_text(json.dumps({"sims": args.sims, "test": args.test, "results": results}, indent=2))
    bad = failures(results)
    for line in bad:
        print("MISSED", line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
