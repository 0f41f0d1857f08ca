"""How ``lossbench advise`` spends its wall-time budget: the plan that fits the time left after the profile
and the pilot (shrunk when the full plan does not: fewer trials and replicates, then fewer losses, the
baseline always kept), the refusal that names a budget that fits when even the smallest plan does not, and
the clock that stops scheduling rounds of runs that would overrun.

Runs are scheduled in rounds of one run per loss, so that a cut costs every loss the same."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lossbench.errors import ConfigError

MIN_SEEDS, MAX_SEEDS, MIN_TRIALS, MAX_TRIALS = 3, 10, 1, 30
#: fewest runs per loss that give a verdict (3 replicates and one trial)
MIN_RUNS = MIN_SEEDS + MIN_TRIALS
#: fewest losses a plan keeps: the baseline and one other
MIN_LOSSES = 2
#: share of ``--workers`` that turns into throughput (measured: 2 workers give 1.65x on 2 cores)
WORKER_EFFICIENCY = 0.8
#: the pilot's share of the budget at most
PILOT_SHARE = 0.1
#: a suggested budget covers the smallest plan with this much to spare (the machine's load varies)
SPARE = 1.15
#: seconds kept for the report after the last run: a fixed part and a part per final run
REPORT_S, REPORT_PER_RUN_S = 6.0, 0.2


def parse_budget(text: str) -> float:
    """``"30m"``, ``"1h30m"``, ``"900s"`` or ``"900"`` (seconds) -> seconds."""
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or not parts or not any(parts.groups()):
        raise ConfigError(f"--budget {text}: give a wall time such as 15m, 1h30m or 900s")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise ConfigError(f"--budget {text}: the budget must be positive")
    return seconds


@dataclass(frozen=True)
class Costs:
    """Seconds of one tuning trial and of one final run (trained, then tested)."""

    trial_s: float
    final_s: float


def round_s(run_s: float, losses: int, workers: int) -> float:
    """Wall time of one round (a run of every loss) with ``workers`` runs at once."""
    if workers <= 1:
        return run_s * losses
    return run_s * math.ceil(losses / workers) / WORKER_EFFICIENCY


def plan_s(trials: int, seeds: int, losses: int, costs: Costs, workers: int) -> float:
    """Wall time of ``trials`` rounds of trials and ``seeds`` rounds of final runs."""
    return trials * round_s(costs.trial_s, losses, workers) + seeds * round_s(costs.final_s, losses, workers)


def report_s(losses: int, seeds: int) -> float:
    """Seconds kept for writing the report over ``losses`` x ``seeds`` final runs."""
    return REPORT_S + REPORT_PER_RUN_S * losses * seeds


def split_runs(runs: int) -> tuple[int, int]:
    """(trials, seeds) of ``runs`` runs per loss: a third replicates (3 to 10), the rest trials (<= 30)."""
    seeds = min(MAX_SEEDS, max(MIN_SEEDS, runs // 3))
    return min(MAX_TRIALS, runs - seeds), seeds


@dataclass(frozen=True)
class BudgetPlan:
    """The losses kept (the baseline first), trials and replicates per loss, and the losses dropped."""

    losses: list[str]
    trials: int
    seeds: int
    dropped: list[str] = field(default_factory=list)

    def line(self, costs: Costs) -> str:
        """The plan in one line, saying what a smaller budget cut."""
        each = f"{self.trials} trial(s) and {self.seeds} replicates per loss"
        runs = f"a trial takes about {costs.trial_s:.0f} s, a final run {costs.final_s:.0f} s"
        if not self.dropped:
            return f"{each} ({runs})"
        return (
            f"the budget fits {len(self.losses)} of {len(self.losses) + len(self.dropped)} losses "
            f"({', '.join(self.losses)}; not {', '.join(self.dropped)}), {each} ({runs}); a larger --budget "
            "keeps them all"
        )


def fit_plan(losses: list[str], costs: Costs, left_s: float, workers: int) -> BudgetPlan | None:
    """The largest plan that fits ``left_s`` seconds (the report's time included): every loss with as many
    runs as fit, else the first losses (the baseline first) with :data:`MIN_RUNS` runs or more; ``None``
    when not even the baseline and one loss fit."""
    fewest = min(MIN_LOSSES, len(losses))
    for kept in range(len(losses), fewest - 1, -1):
        best = None
        for runs in range(MIN_RUNS, MAX_TRIALS + MAX_SEEDS + 1):
            trials, seeds = split_runs(runs)
            need = plan_s(trials, seeds, kept, costs, workers) + report_s(kept, seeds)
            if need > left_s:
                break
            best = (trials, seeds)
        if best is not None:
            return BudgetPlan(losses[:kept], *best, dropped=losses[kept:])
    return None


def grown_plan(
    clock: Clock, losses: int, workers: int, trials: int, seeds: int, done: int
) -> tuple[int, int]:
    """(trials, seeds) per loss once rounds are measured: the largest plan of :func:`split_runs` whose
    trial rounds after the ``done`` ones, its final rounds and the report fit the time left at the rounds'
    measured cost, where it asks for more than ``trials`` and ``seeds`` (a packed round costs little more
    than one of its runs, which the pilot cannot tell); else ``(trials, seeds)``."""
    costs, best = clock.costs(), (trials, seeds)
    for runs in range(trials + seeds + 1, MAX_TRIALS + MAX_SEEDS + 1):
        more_trials, more_seeds = split_runs(runs)
        need = max(more_trials - done, 0) * round_s(costs.trial_s, losses, workers)
        need += more_seeds * round_s(costs.final_s, losses, workers) + report_s(losses, more_seeds)
        if need > clock.left():
            break
        if more_trials >= trials and more_seeds >= seeds:
            best = (more_trials, more_seeds)
    return best


def readmitted(
    clock: Clock, kept: int, dropped: int, workers: int, trials: int, seeds: int, done: int
) -> int:
    """How many of the ``dropped`` losses (the first ones) a plan of ``kept`` losses takes back once rounds
    are measured: the most for which the kept losses' trials after the ``done`` ones, the taken ones' first
    ``done`` trials (rounds of those alone), every loss's ``seeds`` final rounds and the report fit the time
    left at the rounds' measured cost, for ``trials`` per loss; 0 when not even one fits."""
    costs = clock.costs()
    for more in range(dropped, 0, -1):
        need = max(trials - done, 0) * round_s(costs.trial_s, kept + more, workers)
        need += min(done, trials) * round_s(costs.trial_s, more, workers)
        need += seeds * round_s(costs.final_s, kept + more, workers) + report_s(kept + more, seeds)
        if need <= clock.left():
            return more
    return 0


def smallest_plan_s(losses: int, costs: Costs, workers: int) -> float:
    """Seconds of the smallest plan (the baseline and one loss, one trial and 3 replicates each) and its
    report."""
    kept = min(MIN_LOSSES, losses)
    return plan_s(MIN_TRIALS, MIN_SEEDS, kept, costs, workers) + report_s(kept, MIN_SEEDS)


def needed_budget_s(spent_s: float, losses: int, costs: Costs, workers: int) -> float:
    """The budget to suggest: ``spent_s`` (what this run of the command spent before its first trial: a
    rerun into the same ``--out`` spends less, its pilot being kept) and the smallest plan, with
    :data:`SPARE` to spare."""
    return SPARE * (spent_s + smallest_plan_s(losses, costs, workers))


def refusal(
    budget_s: float,
    spent_s: float,
    losses: int,
    costs: Costs,
    workers: int,
    out: object = "",
    pilot_kept: bool = True,
) -> str:
    """Why the budget cannot give a verdict, and the budget that can (a whole minute); ``out``: the
    command's ``--out``, named (a default one is a new folder each time); ``pilot_kept``: whether the rerun
    reuses the pilot (else it times a longer one, and the budget named is at most what it needs: a pilot
    cut inside its first epoch counts the run's start-up in its epoch time)."""
    minutes = math.ceil(needed_budget_s(spent_s, losses, costs, workers) / 60)
    kept = (
        "the pilot is kept"
        if pilot_kept
        else "at most: its pilot times more epochs, without this one's start-up"
    )
    return (
        f"--budget {as_text(budget_s)} leaves {max(budget_s - spent_s, 0):.0f} s after the profile and the "
        f"pilot; the smallest plan (the baseline and one loss, {MIN_TRIALS} trial and {MIN_SEEDS} replicates "
        f"each; a trial takes about {costs.trial_s:.0f} s) needs "
        f"{smallest_plan_s(losses, costs, workers):.0f} s: rerun with --budget {minutes}m and the same --out "
        f"{out} ({kept})".replace("--out  (", "--out (")
    )


def as_text(seconds: float) -> str:
    """A budget as ``--budget`` takes it: ``4m``, ``1h30m``, ``80s``."""
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{unit}" for v, unit in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


class Clock:
    """Wall time since the command started, against its budget; and the runs' measured seconds, which
    replace the pilot's estimates as rounds finish."""

    def __init__(
        self,
        budget_s: float,
        costs: Costs,
        start: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget_s, self.estimate, self.now = budget_s, costs, now
        self.start = now() if start is None else start
        self.seen: dict[str, list[float]] = {"trial": [], "final": []}

    def spent(self) -> float:
        return self.now() - self.start

    def left(self) -> float:
        return self.budget_s - self.spent()

    def observe(self, kind: str, round_wall_s: float, losses: int, workers: int) -> None:
        """Record a round of ``kind`` ("trial" or "final") that took ``round_wall_s`` for ``losses`` runs."""
        self.seen[kind].append(round_wall_s / round_s(1.0, losses, workers))

    def costs(self) -> Costs:
        """Seconds of a run: the mean of the measured rounds, else the pilot's estimate (a final run's
        scaled as the measured trials differ from theirs)."""
        trial, final = (sum(v) / len(v) if v else None for v in self.seen.values())
        scale = trial / self.estimate.trial_s if trial else 1.0
        return Costs(trial or self.estimate.trial_s, final or self.estimate.final_s * scale)

    def trial_round_fits(self, losses: int, workers: int, seeds: int, tuned: int | None = None) -> bool:
        """Whether one more round of trials fits (of ``tuned`` of the ``losses``: those behind; all by
        default), with ``seeds`` rounds of final runs of every loss and the report after."""
        c = self.costs()
        need = round_s(c.trial_s, losses if tuned is None else tuned, workers)
        need += seeds * round_s(c.final_s, losses, workers)
        return need + report_s(losses, seeds) <= self.left()

    def final_round_fits(self, losses: int, workers: int, seeds: int) -> bool:
        """Whether one more round of final runs fits, with the report over ``seeds`` replicates after."""
        return round_s(self.costs().final_s, losses, workers) + report_s(losses, seeds) <= self.left()
