"""How many paired replicates a comparison needs: for the selected test, at the level Holm gives its first
test, counting comparisons beyond the cap as "more than" rather than dropping them.

* **t-test** — the smallest ``n`` whose paired t-test reaches ``power`` against a true gain ``delta`` at
  paired-difference std ``sd``, at level ``alpha / comparisons``, exact from the noncentral t (as
  ``statsmodels.stats.power.TTestPower``);
* **Wilcoxon signed-rank test** — that ``n`` divided by the test's asymptotic relative efficiency to the
  t-test under normal noise, ``3 / π`` (Lehmann 1975, *Nonparametrics*, ch. 2), and never fewer than the
  smallest ``n`` at which the exact test can reject at all: its smallest two-sided p-value is
  ``2 · 2⁻ⁿ`` (every difference of one sign), so with Holm over 4 comparisons at α = 0.05 it needs
  ``4 · 2 · 2⁻ⁿ < 0.05``, n ≥ 8;
* every test needs at least :data:`lossbench.report.verdict.MIN_REPLICATES` pairs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: the largest replicate count :func:`replicates_needed` resolves; beyond it, ``math.inf``
MAX_REPLICATES = 1000
#: fewest paired replicates any verdict is drawn from
MIN_REPLICATES = 3


def min_pairs(test: str = "t", comparisons: int = 1, alpha: float = 0.05) -> int:
    """The fewest pairs with which ``test`` can reject at Holm's first level ``alpha / comparisons``."""
    if test != "wilcoxon":
        return MIN_REPLICATES
    level = alpha / max(comparisons, 1)
    n = MIN_REPLICATES
    while 2.0 * 0.5**n >= level:
        n += 1
    return n


def replicates_needed(
    sd: float,
    delta: float,
    comparisons: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
    test: str = "t",
) -> float | None:
    """Replicates the ``test`` needs to detect a true gain ``delta`` with ``power`` (module docs): an
    int, ``math.inf`` above :data:`MAX_REPLICATES`, ``None`` when undefined (no spread, no gain)."""
    if math.isnan(sd) or not (sd > 0 and delta > 0):
        return None
    level = alpha / max(comparisons, 1)
    n = np.arange(2, MAX_REPLICATES + 1)
    t_crit = stats.t.ppf(1 - level / 2, n - 1)
    achieved = stats.nct.sf(t_crit, n - 1, delta / sd * np.sqrt(n))
    enough = np.flatnonzero(achieved >= power)
    if not len(enough):
        return math.inf
    needed = int(n[enough[0]])
    if test == "wilcoxon":
        needed = math.ceil(needed * math.pi / 3)
    needed = max(needed, min_pairs(test, comparisons, alpha))
    return needed if needed <= MAX_REPLICATES else math.inf


def typical(needed: list[float | None]) -> str | None:
    """The median need of several comparisons in words (``"about 12"``, ``"> 1000"``), the ones beyond the
    cap counted as larger than every other, then how many those are; None when no need is defined."""
    known = sorted(x for x in needed if x is not None)
    if not known:
        return None
    mid = len(known) // 2
    median = known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2
    text = f"> {MAX_REPLICATES}" if math.isinf(median) else f"about {math.ceil(median)}"
    text += " replicates"
    if beyond := sum(math.isinf(x) for x in known):
        text += f" ({beyond} of {len(known)} comparisons need > {MAX_REPLICATES})"
    return text
