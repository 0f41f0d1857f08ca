"""The equal-budget protocol: one Optuna study per loss, the same number of trials each, then final runs.

``lossbench tune --loss ce,focal --trials 20 --seeds 5 --out DIR OVERRIDE...``:

1. every loss gets a study named after it in one storage (``DIR/study.db``, SQLite, unless ``--storage``),
   TPE-sampled (seeded) over the shared space plus the loss's own (:mod:`lossbench.tune.space`), each trial
   a training run chosen on the validation metric (``monitor``) with the test split never read;
2. a study holds exactly ``--trials`` finished or pruned trials; a trial that diverges (NaN loss) counts as
   pruned, so every loss pays for its failures alike; a trial left *running* by a killed process is marked
   failed and its parameters are run again first, so a killed search continues without losing a trial;
3. the best trial of each loss is trained again for ``--seeds`` replicates and tested
   (``DIR/final/<loss>/<seed>``, :mod:`lossbench.tune.final`), and the comparison report over them is
   written to ``DIR/report/`` with the expected best validation score against the budget
   (:mod:`lossbench.report.budget`).
"""

from __future__ import annotations

import fcntl
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import DictConfig
from optuna.trial import TrialState

from lossbench.config import check_losses_serve
from lossbench.errors import ConfigError, NonFiniteLossError
from lossbench.overrides import override_key, run_overrides
from lossbench.record import read_record
from lossbench.signals import as_interrupted
from lossbench.tune import space as sp
from lossbench.tune.jobs import (
    check_overrides_apply,
    compose_job,
    job_line,
    monitor_and_task,
    run_job,
    tags_with,
)
from lossbench.tune.plan import Plan

log = logging.getLogger("lossbench")

#: trial states that use up a loss's budget
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
#: the user attribute of a trial that ended before its first validation (counted as pruned)
UNVALIDATED = "unvalidated"


def storage(plan: Plan) -> optuna.storages.BaseStorage | str:
    """An SQLAlchemy URL as it is; a path ending in ``.log`` / ``.journal``: Optuna's journal file storage."""
    url = plan.storage_url
    if url.endswith((".log", ".journal")) and "://" not in url:
        backend = optuna.storages.journal.JournalFileBackend(url)
        return optuna.storages.JournalStorage(backend)
    return url


def open_study(plan: Plan, loss: str, direction: str) -> optuna.Study:
    """The study of ``loss`` (created on first use), with a TPE sampler seeded by :func:`sampler_seed`."""
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if plan.prune else None
    return optuna.create_study(
        study_name=loss,
        storage=storage(plan),
        direction="maximize" if direction == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed(plan, loss), constant_liar=True),
        pruner=pruner or optuna.pruners.NopPruner(),
        load_if_exists=True,
    )


def sampler_seed(plan: Plan, loss: str) -> int:
    """The sampler's seed: ``--seed`` and the number of trials the study already stores.

    A sampler seeded by ``--seed`` alone starts its random stream again in every process, so a tune
    killed and continued would ask its first configurations again. Seeded by what is stored, the stream
    follows from the study's trials: the same for the same stored trials, and new after each one.
    """
    try:
        stored = len(optuna.load_study(study_name=loss, storage=storage(plan)).get_trials(deepcopy=False))
    except KeyError:  # no such study yet
        stored = 0
    return int(np.random.SeedSequence([plan.seed, stored]).generate_state(1)[0])


def repeats(study: optuna.Study, params: dict[str, Any]) -> int | None:
    """The number of a finished or pruned trial of ``study`` that had exactly ``params``, if any."""
    for done in study.get_trials(deepcopy=False, states=COUNTED):
        if done.params == params:
            return done.number
    return None


def counted(study: optuna.Study, with_running: bool = False) -> int:
    states = (*COUNTED, TrialState.RUNNING) if with_running else COUNTED
    return len(study.get_trials(deepcopy=False, states=states))


def first_counted(study: optuna.Study, upto: int) -> list[optuna.trial.FrozenTrial]:
    """The study's first ``upto`` counted (finished or pruned) trials, in trial order: the budget every
    loss gets, also where a stopped command left one study a trial ahead of the others."""
    trials = sorted(study.get_trials(deepcopy=False, states=COUNTED), key=lambda t: t.number)
    return trials[:upto]


def trial_dir(plan: Plan, loss: str, number: int) -> Path:
    """The run dir of trial ``number`` of ``loss``'s study."""
    return plan.out / "trials" / loss / str(number)


def recover_stale(plan: Plan, loss: str, study: optuna.Study) -> int:
    """Trials of ``loss``'s ``study`` left running by a stopped or killed process. One whose run dir holds
    a finished record (trained, stopped before its study was told: a packed batch is told one trial after
    another) is told its value; the others are marked failed and their parameters queued again. Returns
    how many are queued again."""
    queued = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        record = read_record(trial_dir(plan, loss, trial.number))
        value = record.monitor.get("best") if record.ok and record.monitor else None
        if value is not None and math.isfinite(value):
            study.tell(trial.number, float(value))
            log.info("tune %s: trial %d had finished before the stop: told its value", loss, trial.number)
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        queued += 1
    return queued


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock between the workers of one machine (counting and asking for a trial)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def next_trials(plan: Plan, study: optuna.Study, n: int = 1) -> list[optuna.Trial]:
    """Up to ``n`` new trials of ``study``, as many as its budget has left (finished, pruned or running
    elsewhere count); asked together, the sampler treats the earlier ones as running
    (``constant_liar``)."""
    with locked(plan.out / ".tune.lock"):
        left = plan.trials - counted(study, with_running=True)
        return [study.ask() for _ in range(max(0, min(n, left)))]


def next_trial(plan: Plan, study: optuna.Study) -> optuna.Trial | None:
    """A new trial of ``study`` unless its budget is spent."""
    trials = next_trials(plan, study)
    return trials[0] if trials else None


@dataclass
class TrialJob:
    """An asked trial made ready to train: its loss, sampled parameters, run config and console head."""

    loss: str
    trial: optuna.Trial
    params: dict[str, Any]
    cfg: DictConfig
    head: str
    overrides: list[str] = field(default_factory=list)  # what its record names (its run's composition)


def prepare_trial(
    plan: Plan, loss: str, monitor: tuple[str, str], trial: optuna.Trial, batch: list[TrialJob] | None = None
) -> TrialJob | None:
    """Sample ``trial``'s configuration and compose its run; None when it repeats a counted trial or one of
    ``batch`` (asked with it): the budget buys distinct configurations, so it is told failed, not trained."""
    params = {p.key: p.suggest(trial) for p in sp.search_space(loss)}
    earlier = repeats(trial.study, params)
    if earlier is None:
        earlier = next(
            (job.trial.number for job in batch or [] if (job.loss, job.params) == (loss, params)), None
        )
    if earlier is not None:
        trial.set_user_attr("repeat_of", earlier)
        trial.study.tell(trial, state=TrialState.FAIL)
        log.info(
            "tune %s: trial %d repeats trial %d's configuration; asking again", loss, trial.number, earlier
        )
        return None
    run_dir = trial_dir(plan, loss, trial.number)
    overrides = [*plan.overrides, f"loss={loss}", *sp.overrides(params), "test=false", tags_with("trial")]
    cfg = compose_job(
        overrides, run_dir, monitor, f"tune_{plan.out.name}", name=f"{loss} trial {trial.number}"
    )
    head = f"tune {loss}: trial {trial.number} ({' '.join(sp.overrides(short(params)))})"
    return TrialJob(loss, trial, params, cfg, head, run_overrides())


def run_trial(plan: Plan, loss: str, monitor: tuple[str, str], trial: optuna.Trial) -> None:
    """Train one trial's configuration and tell the study its best validation value (or that it pruned)."""
    job = prepare_trial(plan, loss, monitor, trial)
    if job is not None:
        train_trial(plan, job, monitor)


def train_trial(plan: Plan, job: TrialJob, monitor: tuple[str, str]) -> None:
    """Train a prepared trial on its own and tell its study the outcome (a stop: :func:`abandon`)."""
    callbacks = [pruning_callback(job.trial, monitor[0])] if plan.prune else []
    try:
        summary = run_job(job.cfg, callbacks)
    except optuna.TrialPruned as err:
        job.trial.study.tell(job.trial, state=TrialState.PRUNED)
        log.info("%s: %s", job.head, err)
        return
    except NonFiniteLossError as err:  # a diverging configuration: it used the budget, it is hopeless
        diverged(job, str(err))
        return
    except BaseException as err:
        abandon(job, err)
        raise
    tell(job, summary)


def tell(job: TrialJob, summary: dict[str, Any]) -> None:
    """Tell the study a trained trial's best validation value (pruned when it has none)."""
    value = summary["monitor"]["best"]
    log.info("%s: %s", job.head, job_line(summary))
    if value is None or not math.isfinite(value):
        if value is None:  # it stopped before its first validation (trainer.max_steps, max_time, ...)
            job.trial.set_user_attr(UNVALIDATED, True)
        job.trial.study.tell(job.trial, state=TrialState.PRUNED)
        return
    job.trial.study.tell(job.trial, float(value))


def diverged(job: TrialJob, why: str) -> None:
    """A trial whose loss went NaN/Inf counts as pruned: it used the budget."""
    job.trial.set_user_attr("diverged", why)
    job.trial.study.tell(job.trial, state=TrialState.PRUNED)
    log.info("%s: diverged, counted as pruned", job.head)


def abandon(job: TrialJob, err: BaseException) -> None:
    """A prepared trial stopped by ``err`` (:func:`abandon_trial`)."""
    abandon_trial(job.trial, err)


def abandon_trial(trial: optuna.Trial, err: BaseException) -> None:
    """A trial stopped by ``err``: failed, and queued again (with the parameters it has) when a signal
    stopped it (SIGTERM, Ctrl-C) so the same command trains it again."""
    trial.study.tell(trial, state=TrialState.FAIL)
    if as_interrupted(err) is not None:
        trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def short(params: dict[str, Any]) -> dict[str, Any]:
    """Sampled floats to 4 significant digits, for the console line (3 would print class-balanced β's
    choice 0.9999 as 1.0)."""
    return {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in params.items()}


def pruning_callback(trial: optuna.Trial, metric: str) -> Any:
    from lossbench.tune.pruning import OptunaPruning

    return OptunaPruning(trial, metric)


def tune_loss(plan: Plan, loss: str, monitor: tuple[str, str]) -> None:
    """Run trials of ``loss`` until its study holds ``plan.trials`` finished or pruned ones, up to
    ``plan.pack`` at a time trained as one packed model (:mod:`lossbench.tune.packed`); the study is opened
    again for each batch, so its sampler's seed follows from the trials stored so far."""
    from lossbench.tune.packed import batch_size, run_trials

    while trials := next_trials(plan, open_study(plan, loss, monitor[1]), batch_size(plan, loss, monitor)):
        run_trials(plan, monitor, [(loss, trial) for trial in trials])


def best_params(plan: Plan, loss: str, direction: str) -> dict[str, Any]:
    """The parameters of the best of the first ``plan.trials`` counted trials of ``loss`` (the earliest
    of equal ones)."""
    study = open_study(plan, loss, direction)
    budget = first_counted(study, plan.trials)
    complete = [t for t in budget if t.state is TrialState.COMPLETE]
    pruned = [t for t in budget if t.state is TrialState.PRUNED]
    if not complete and pruned and all(t.user_attrs.get(UNVALIDATED) for t in pruned):
        raise ConfigError(
            f"no trial of {loss} was validated: each stopped before its first epoch ended "
            "(trainer.max_steps or trainer.max_time among the overrides?); let every trial train at least "
            "one epoch"
        )
    if not complete:
        own = sp.SPACES_DIR / f"{loss}.yaml"
        spaces = (
            f"lossbench/tune/spaces/{own.name} and optim.yaml"
            if own.is_file()
            else "lossbench/tune/spaces/optim.yaml"
        )
        what = "was pruned or diverged" if plan.prune else "diverged"
        fix = f"narrow its search space ({spaces}, e.g. a lower learning-rate range)"
        raise ConfigError(
            f"every trial of {loss} {what}: {fix}" + (", or leave out --prune" if plan.prune else "")
        )
    sign = -1.0 if direction in ("max", "maximize") else 1.0
    return min(complete, key=lambda t: (sign * float(t.value), t.number)).params


def resolve_monitor(plan: Plan) -> tuple[str, str]:
    """The validation metric and direction every study optimises (from the config, else the task's), once
    what would fail later is refused: overrides a loss cannot take or that the search replaces
    (:func:`~lossbench.tune.jobs.check_overrides_apply`), and losses that cannot train on the data."""
    check_overrides_apply(plan.overrides, plan.losses, plan.out / "trials")
    monitor, task = monitor_and_task([*plan.overrides, f"loss={plan.losses[0]}"], plan.out / "trials")
    if not any(override_key(o).startswith("loss.") for o in plan.overrides):  # else a loss's tasks may differ
        check_losses_serve(plan.losses, task)
    return monitor
