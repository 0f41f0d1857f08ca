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

``sd`` is an estimate from the ``pilot`` pairs at hand. Taken as the true std, the ``n`` it gives reached
80% power in only about 40% of simulated pilots (mean power 0.59–0.75 with 3–10 pilot pairs: a small
sample's std is often below the true one); so it is taken at its one-sided :data:`SD_CONFIDENCE` upper
confidence bound, ``sd · sqrt((k − 1) / χ²_{1−c, k−1})`` for ``k`` pilot pairs, which gives 80% power in
about 80% of pilots, and a mean power of 0.87–0.89 (``scripts/validate_stats.py``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: the largest replicate count :func:`replicates_needed` resolves; beyond it, ``math.inf``
MAX_REPLICATES = 1000
#: fewest paired replicates any verdict is drawn from
MIN_REPLICATES = 3
#: the confidence of the upper bound on the pilot's std that :func:`replicates_needed` plans with
SD_CONFIDENCE = 0.8


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
    pilot: int | None = None,
) -> float | None:
    """Replicates the ``test`` needs to detect a true gain ``delta`` with ``power`` (module docs): an
    int, ``math.inf`` above :data:`MAX_REPLICATES`, ``None`` when undefined (no spread, no gain).
    ``pilot``: the pairs ``sd`` was estimated from (its upper confidence bound is planned with); None:
    ``sd`` is the true std."""
    if math.isnan(sd) or not (sd > 0 and delta > 0):
        return None
    if pilot is not None and pilot >= 2:
        sd *= math.sqrt((pilot - 1) / float(stats.chi2.ppf(1 - SD_CONFIDENCE, pilot - 1)))
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
