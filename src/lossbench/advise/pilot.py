"""The pilot of ``lossbench advise``: the baseline's default configuration trained for a few epochs (or until
its share of the budget is spent), timed per epoch, and extrapolated to a whole run of
``trainer.max_epochs`` epochs, a tuning trial and a final run."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lossbench.advise.budget import Costs

#: epochs the pilot trains (the first one's start-up and one or more steady ones)
PILOT_EPOCHS = 3
#: an epoch's validation, as a share of its training, when the pilot stops inside the first epoch
VALIDATION_SHARE = 0.25
#: seconds a tuning trial adds to a run (its config composed, its study opened and told; measured 0.5-1.5 s
#: on 2 busy cores); a final run adds an epoch to a trial (the test split's pass, the recalibration's
#: validation pass, predictions written)
TRIAL_EXTRA_S = 1.0
#: later runs took up to 1.2x the pilot's extrapolation on a shared machine: the plan counts with that
MARGIN = 1.2


def epoch_estimate(
    epoch_ends: list[float], partial_s: float, batches: int, batches_per_epoch: float
) -> tuple[float, float]:
    """(seconds of one epoch, epochs done) from the times of the finished epochs' ends (since fit
    started) and, when stopped inside an epoch, ``batches`` of ``batches_per_epoch`` done in ``partial_s``.

    Two or more epochs: the median of the later ones (the first holds the start-up); none, or one and part
    of the next: the unfinished epoch's batch rate over a whole epoch, plus :data:`VALIDATION_SHARE` for its
    validation (a first epoch's start-up put a fast run at 7x its epochs); one alone: that one."""
    share = batches / batches_per_epoch if batches and batches_per_epoch > 0 else 0.0
    if len(epoch_ends) >= 2:
        steady = [b - a for a, b in zip(epoch_ends[:-1], epoch_ends[1:], strict=True)]
        return statistics.median(steady), len(epoch_ends) + share
    if share > 0:
        return partial_s / share * (1 + VALIDATION_SHARE), len(epoch_ends) + share
    if epoch_ends:
        return epoch_ends[0], 1.0
    return partial_s, 0.0


@dataclass(frozen=True)
class Pilot:
    """What the pilot measured and what it gives: ``run_s``, a whole run of ``max_epochs`` epochs."""

    wall_s: float
    epoch_s: float
    epochs_done: float
    max_epochs: int
    run_s: float

    @property
    def steady(self) -> bool:
        """Whether it timed epochs after the first (or every epoch of a shorter run): a pilot cut earlier by
        its share of a small budget is measured again by a command with a larger one."""
        return self.epochs_done >= min(2, self.max_epochs)

    def costs(self) -> Costs:
        trial = MARGIN * self.run_s + TRIAL_EXTRA_S
        return Costs(trial_s=trial, final_s=trial + MARGIN * self.epoch_s)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def line(self) -> str:
        run = f"{self.run_s:.1f}" if self.run_s < 10 else f"{self.run_s:.0f}"
        return (
            f"pilot: {self.epochs_done:.3g} epoch(s) of the baseline in {self.wall_s:.1f} s, about "
            f"{self.epoch_s:.2f} s an epoch: a run of {self.max_epochs} epochs takes about {run} s"
        )


def extrapolate(wall_s: float, epoch_s: float, epochs_done: float, max_epochs: int) -> Pilot:
    """The pilot's ``wall_s`` plus the epochs it did not train."""
    run_s = wall_s + epoch_s * max(max_epochs - epochs_done, 0.0)
    return Pilot(wall_s, epoch_s, epochs_done, max_epochs, run_s)


def run_pilot(overrides: list[str], out: Path, monitor: tuple[str, str], deadline: float) -> Pilot:
    """Train ``overrides`` (the baseline's default configuration, ``test=false``) in ``out`` until
    :data:`PILOT_EPOCHS` epochs or ``deadline``, and extrapolate."""
    from lossbench.tune.jobs import compose_job, run_job

    start = time.monotonic()
    cfg = compose_job(overrides, out, monitor, task_name=f"advise_{out.parent.name}")
    max_epochs = cfg.trainer.get("max_epochs")
    if not isinstance(max_epochs, int) or max_epochs < 1 or (cfg.trainer.get("max_steps") or -1) != -1:
        max_epochs = PILOT_EPOCHS  # a run bounded otherwise: timed as a run of the pilot's length
    from lossbench.advise.epoch_clock import PilotClock  # Lightning loads here, within the budget

    clock = PilotClock(min(PILOT_EPOCHS, max_epochs), deadline)
    run_job(cfg, [clock])
    wall_s = time.monotonic() - start
    return extrapolate(wall_s, *clock.estimate(), max_epochs)
