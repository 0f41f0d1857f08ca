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
* ``false_equivalence`` — a true gain of 2 ROPEs: share called ``equivalent`` (must be ≤ alpha);
* ``friedman_null_k<k>`` — 3 settings, ``k`` losses, nothing differs: share where the across-settings
  decision rejects (must be ≤ alpha);
* ``cover_<estimate>_<noise>_n<n>`` — coverage of the report's 95% intervals of the mean, the IQM and the
  mean paired difference (``diff``) at 3, 5 and 10 replicates, for normal, t₃ and seed-correlated noise (a
  per-seed effect shared by both losses, std 1, plus each run's own noise, std 0.5): target ≥ 93%;
* ``cover_p_improvement_<noise>_shift<δ>`` — coverage of P(improvement)'s 95% interval at 5 replicates
  each, for true P(improvement) from ½ to nearly 1: target ≥ 90%;
* ``p_improvement_bias_<noise>_n<n>`` — the mean P(improvement) estimate of runs paired by seed (same-seed
  pairs left out, as the report does) against the true P(X > Y) of independent runs: within ±0.03;
* ``best_group_null_k<k>`` — ``k`` losses that do not differ, 5 seeds: share of settings whose best group
  leaves some loss out (must be ≤ alpha);
* ``replicates_needed_power_pilot<n>`` — "about N replicates would resolve a difference of one ROPE",
  planned from ``n`` pilot pairs (paired std 2 ROPEs, 4 comparisons): the mean power that N replicates
  have against a true gain of one ROPE (target ≥ 80%);
* ``degenerate_*`` and ``crossing_curves`` — fixed inputs that must give no p-value and no claim (2 seeds
  with equal paired differences; 5 seeds with a constant difference), a non-degenerate P(improvement)
  interval when every run wins, and a budget text that names the budgets where two curves cross.

Coverage is measured from the functions ``lossbench.report.stats.summarize`` calls for its rows. A rate
target holds within simulation error: at fewer than 1,000 simulations (the test's short run) a coverage
target is lowered by two binomial standard errors.

``python scripts/validate_stats.py [--sims 1000] [--test t|wilcoxon] [--json out.json]``; exit status 1 when
a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats_scenarios import (  # noqa: E402
    DEFAULT_ALPHA,
    DEFAULT_ROPE,
    NOISES,
    POINT,
    best_group_null,
    coverage,
    degenerate_cases,
    friedman_null,
    improvement_bias,
    null_scenario,
    one_loss_differs,
    replicates_power,
)


def simulate(sims: int = 1000, test: str = "t", seed: int = 0) -> dict[str, dict[str, float]]:
    """Every scenario's observed rate and its target (``max`` or ``min``)."""
    rng = np.random.default_rng(seed)
    # alpha within simulation error: 1.5 points at 1,000 simulations (~2 binomial std), wider for fewer
    slack = max(0.015, 2 * float(np.sqrt(DEFAULT_ALPHA * (1 - DEFAULT_ALPHA) / sims)))
    fixed = {name: {"rate": float(ok), "min": 1.0} for name, ok in degenerate_cases().items()}
    friedman = {
        f"friedman_null_k{k}": {"rate": friedman_null(rng, sims, 3, k), "max": DEFAULT_ALPHA + slack}
        for k in (3, 5)
    }
    bias = {
        f"p_improvement_bias_{noise}_n{n}": improvement_bias(rng, sims, n, noise)
        for noise in NOISES
        for n in (3, 5)
    }
    best = {
        f"best_group_null_k{k}": {"rate": best_group_null(rng, sims, k), "max": DEFAULT_ALPHA + slack}
        for k in (3, 8)
    }
    planned = {
        f"replicates_needed_power_pilot{n}": {"rate": replicates_power(rng, sims, n), "min": 0.80}
        for n in (3, 5)
    }
    return {
        **fixed,
        **friedman,
        **coverage(rng, sims),
        **bias,
        **best,
        **planned,
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
        bound = f"<= {r['max']:.3f}" if "max" in r else f">= {r['min']:.3f}"
        print(f"{name:42s} {r['rate']:.3f}  (target {bound})")
    if args.json:
        args.json.write_text(json.dumps({"sims": args.sims, "test": args.test, "results": results}, indent=2))
    bad = failures(results)
    for line in bad:
        print("MISSED", line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
