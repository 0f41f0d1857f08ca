"""The sweep summary: one line per finished job, and a table of every job when the sweep ends.

:class:`SweepSummary` (a Hydra callback, see ``conf/hydra/default.yaml``) refuses a sweep whose DDP strategy
would re-run the command line (:func:`lossbench.checks.check_ddp_in_multirun`), or whose Slurm request does
not fit its trainer (:func:`lossbench.slurm.slurm_problems`), before its first job; makes a sweep whose
jobs run in other processes stop as a whole (:mod:`lossbench.sweep_stop`); and
when the sweep ends prints a Rich table of every job's status and headline metric, writes
``sweep_summary.json`` and sets the exit status. Each job's row comes from its run record alone.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lossbench.checks import accelerator_problems, check_ddp_in_multirun, raise_problems
from lossbench.config import launcher_of
from lossbench.errors import EXIT_FAILED, ConfigError, RunInterrupted, exit_status
from lossbench.overrides import override_key, override_list, swept_keys_of
from lossbench.record import (
    FAILED,
    INTERRUPTED,
    MISSING,
    OK,
    STATUSES,
    UNREADABLE,
    read_record,
)
from lossbench.run_dir import RECORD_NAME, SWEEP_SUMMARY_NAME, RunDir, saved_sweep
from lossbench.signals import as_interrupted, continue_command, sigterm_raises, started
from lossbench.slurm import is_slurm_launcher, slurm_problems, swept_trainer
from lossbench.sweep_jobs import planned_jobs, planned_size
from lossbench.sweep_stop import (
    clear_stop,
    runs_jobs_elsewhere,
    say_jobs_go_on_on_signal,
    stop_workers_on_signal,
    sweep_ended,
)
from lossbench.task import spec

log = logging.getLogger("lossbench")


def job_line(summary: dict[str, Any], size: int | None = None) -> str:
    """``job #4 of 12 (loss=focal seed=1): best val/acc=0.9500 | test/acc=0.9417`` for a finished job;
    ``size``: the sweep's jobs (:func:`~lossbench.sweep_jobs.planned_size` of its dir when not given)."""
    hc = HydraConfig.get()
    size = planned_size(Path(hc.sweep.dir)) if size is None else size
    of = f" of {size}" if size else ""
    monitor = summary["monitor"]
    first = headline(summary)
    tested = f" | {first[0]}={first[1]:.4f}" if first else ""
    overrides = " ".join(override_list(hc.overrides.task))
    return f"job #{hc.job.num}{of} ({overrides}): best {monitor['metric']}={monitor['best']:.4f}{tested}"


def headline(record: dict[str, Any]) -> tuple[str, float] | None:
    """The task's headline test metric (:attr:`lossbench.task.TaskSpec.headline`) of a record, with its
    value."""
    data_info = record.get("data_info") or {}
    try:
        return spec(data_info.get("task")).headline_of(
            record.get("test") or {}, data_info.get("class_counts")
        )
    except ValueError:  # a data module of the user's that describes itself without a task
        return None


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Hydra job directories of a sweep (those holding ``.hydra/`` or ``metrics.json``), by job number."""
    found = {p.parent for p in sweep_dir.glob(f"*/{RECORD_NAME}")} | {
        p.parent for p in sweep_dir.glob("*/.hydra") if p.is_dir()
    }
    return sorted(found, key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))


def all_jobs(sweep_dir: Path) -> list[tuple[Path, list[str] | None]]:
    """:func:`job_dirs`, and the dirs of the jobs a basic sweep has that never started (an interrupted
    sweep), so that its table covers every job; each with its overrides as the sweep enumerates them
    (:func:`~lossbench.sweep_jobs.planned_jobs`; None where it cannot)."""
    found = job_dirs(sweep_dir)
    planned = dict(enumerate((planned_jobs(sweep_dir) if sweep_dir.is_dir() else None) or []))
    names = {d.name for d in found}
    never = [sweep_dir / str(n) for n in planned if str(n) not in names]
    dirs = sorted([*found, *never], key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))
    return [(d, planned.get(int(d.name)) if d.name.isdigit() else None) for d in dirs]


def all_job_dirs(sweep_dir: Path) -> list[Path]:
    """The dirs of :func:`all_jobs`."""
    return [d for d, _ in all_jobs(sweep_dir)]


def read_job(job_dir: Path, planned: list[str] | None = None) -> dict[str, Any]:
    """One job's status row: ok / failed or interrupted (its error) / missing or unreadable (the reason);
    ``planned``: the job's overrides as its sweep enumerates them, for a job that never saved its own."""
    try:
        overrides = RunDir(job_dir).overrides() or list(planned or [])
    except ValueError:
        overrides = list(planned or [])
    record = read_record(job_dir)
    row: dict[str, Any] = {"job": job_dir.name, "dir": str(job_dir), "overrides": overrides}
    row.update(status=record.status, loss=record.loss, seed=record.seed)
    if not record.ok:
        row["error"] = record.reason if job_dir.is_dir() else "the job did not start"
        return row
    monitor = record.monitor or {}
    row["monitor"] = monitor.get("metric")
    row["best"] = monitor.get("best")
    row["headline"] = headline(record.to_dict())
    return row


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else str(value)


def common_overrides(rows: list[dict[str, Any]], swept: set[str] = frozenset()) -> list[str]:
    """Overrides shared by every job (shown once in the title instead of on every row); none of the keys
    the sweep varies (``swept``), which the jobs that did not start might set otherwise."""
    lists = [r["overrides"] for r in rows if r["overrides"]]
    if len(lists) < 2:
        return []
    return [o for o in lists[0] if all(o in other for other in lists[1:]) and override_key(o) not in swept]


def swept_keys(sweep_dir: Path) -> set[str]:
    """The keys a sweep varies, from the ``multirun.yaml`` Hydra wrote in its dir (none without it)."""
    hydra_node = saved_sweep(sweep_dir)
    if hydra_node is None:
        return set()
    keys = set((hydra_node.sweeper.get("params") or {}).keys())
    try:
        return keys | swept_keys_of(override_list(hydra_node.overrides.task))
    except Exception:  # an override Hydra's parser no longer reads: every key may vary then
        return keys | {override_key(o) for o in override_list(hydra_node.overrides.task)}


def render_table(rows: list[dict[str, Any]], title: str, swept: set[str] = frozenset()) -> Any:
    """The Rich table of the jobs (``swept``: the keys the sweep varies); overrides, errors and paths are
    printed literally (``data.drop=[id]`` is not Rich markup)."""
    from rich.markup import escape
    from rich.table import Table

    common = common_overrides(rows, swept)
    title = escape(title)
    if common:
        title += f"\ncommon overrides: {escape(' '.join(common))}"

    table = Table(title=title, title_justify="left")
    for col in ("job", "overrides", "status", "best val", "headline test", "error"):
        table.add_column(col, overflow="fold")
    style = {OK: "green", FAILED: "red", INTERRUPTED: "yellow", MISSING: "yellow", UNREADABLE: "yellow"}
    for row in rows:
        best = f"{row['monitor']}={_fmt(row['best'])}" if row.get("monitor") else ""
        headline = f"{row['headline'][0]}={_fmt(row['headline'][1])}" if row.get("headline") else ""
        status = row["status"]
        table.add_row(
            escape(row["job"]),
            escape(" ".join(o for o in row["overrides"] if o not in common)),
            f"[{style.get(status, 'white')}]{status}[/]",
            best,
            headline,
            escape(row.get("error") or ""),
        )
    return table


class SweepSummary(Callback):
    """Hydra callback: after a multirun, a table of every job, ``sweep_summary.json`` and the exit status.

    Args:
        fail_on_job_error: exit with status 1 (after the table) when any job failed or left no metrics, so
            scripts and CI notice; the other jobs have finished either way.
        ddp_guard: refuse a relaunching DDP strategy before the first job (see :func:`check_ddp_in_multirun`;
            under ``hydra/launcher=slurm`` srun starts the processes and the request is checked instead).
    """

    def __init__(self, fail_on_job_error: bool = True, ddp_guard: bool = True) -> None:
        self.fail_on_job_error = fail_on_job_error
        self.ddp_guard = ddp_guard

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_continued_sweep(config)
            if is_slurm_launcher(config):  # srun starts a job's processes: nothing is relaunched
                raise_problems(slurm_problems(config))
            elif self.ddp_guard:
                check_ddp_in_multirun(config.get("trainer"))
                if not swept_trainer(config):  # one trainer for every job: a GPU none of them would find
                    raise_problems(list(accelerator_problems(config)))
            clear_stop(Path(config.hydra.sweep.dir))
            if runs_jobs_elsewhere(launcher_of(config)):
                stop_workers_on_signal(Path(config.hydra.sweep.dir))
            elif is_slurm_launcher(config):
                say_jobs_go_on_on_signal(Path(config.hydra.sweep.dir))
        except ConfigError as err:
            log.error("%s: %s", type(err).__name__, err)
            raise SystemExit(exit_status(err)) from None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_ended()
        print_sweep_summary(Path(config.hydra.sweep.dir), fail=self.fail_on_job_error)


def check_continued_sweep(config: DictConfig) -> None:
    """A sweep continued (``resume=true``) must be asked as it was started, in the same order: Hydra numbers
    the jobs by it, and job ``N``'s dir would hold another job's files. Checked against the
    ``multirun.yaml`` the start left, before any job runs."""
    saved = saved_sweep(Path(config.hydra.sweep.dir)) if config.get("resume") else None
    if saved is None:
        return

    def sweep_overrides(overrides: Any) -> list[str]:
        return [o for o in override_list(overrides) if override_key(o) not in ("resume", "hydra.run.dir")]

    before = sweep_overrides(saved.overrides.task)
    now = sweep_overrides(config.hydra.overrides.task)
    if before != now:
        started = " ".join(before)
        raise ConfigError(
            f"hydra.sweep.dir={config.hydra.sweep.dir} holds a sweep started as `-m {started}`: continue it "
            "with exactly those overrides, in that order, and resume=true (job numbers follow the order), "
            "or pick a new hydra.sweep.dir"
        )


def print_sweep_summary(sweep_dir: Path, fail: bool = True) -> None:
    """Print the table of a sweep's jobs, write ``sweep_summary.json``; ``fail``: exit 1 if a job did not
    finish."""
    from rich.console import Console

    summary = [read_job(d, planned) for d, planned in all_jobs(sweep_dir)]
    counts = {s: sum(r["status"] == s for r in summary) for s in STATUSES}
    title = f"sweep {sweep_dir}: {len(summary)} jobs, " + ", ".join(
        f"{n} {s}" for s, n in counts.items() if n or s in (OK, FAILED, MISSING)
    )
    if sweep_dir.is_dir():
        (sweep_dir / SWEEP_SUMMARY_NAME).write_text(json.dumps(summary, indent=2, default=str))
    console = Console(width=max(120, Console().width))
    console.print(render_table(summary, title, swept_keys(sweep_dir)))
    console.print(f"report: lossbench compare {sweep_dir}")
    if fail and counts["ok"] < len(summary):
        unfinished = len(summary) - counts["ok"]
        log.error("%d of %d sweep jobs did not finish: exit status 1", unfinished, len(summary))
        if counts[INTERRUPTED]:  # stopped alone (a Slurm time limit): the sweep ran its other jobs
            log.error("the interrupted jobs continue with: %s", continue_command(sweep_dir))
        raise SystemExit(EXIT_FAILED)


@contextmanager
def ending_when_stopped(sweep_dir: Path) -> Iterator[None]:
    """A launcher's jobs, once the command's start is over: SIGTERM raises wherever Lightning's handler is
    not in place, and a stop that reaches the launcher (between jobs, in a packed group) ends the sweep
    (:func:`end_stopped_sweep`); a job stopped in its own task says so itself."""
    started()
    try:
        with sigterm_raises():
            yield
    except (Exception, KeyboardInterrupt) as caught:
        if (err := as_interrupted(caught)) is None:
            raise
        end_stopped_sweep(sweep_dir, err)


def end_stopped_sweep(sweep_dir: Path, err: RunInterrupted) -> NoReturn:
    """End a sweep stopped by ``err`` outside a job's own task (between jobs, or in a packed group): its
    table, the command that continues it, and the signal's exit status."""
    print_sweep_summary(sweep_dir, fail=False)
    log.error(
        "stopped by %s: each unfinished job continues from the last epoch its checkpoints/last.ckpt "
        "holds (one stopped in its first epoch starts again). Continue with: %s",
        err.signal_name,
        continue_command(sweep_dir),
    )
    raise SystemExit(exit_status(err)) from None
