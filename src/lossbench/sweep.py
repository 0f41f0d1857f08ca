"""Multirun support: failed jobs are recorded (not fatal), DDP is guarded, and a sweep ends with a table.

* :func:`record_failure` writes ``metrics.json`` with ``status: failed`` (error, traceback, overrides,
  config) into the failed job's directory; the Hydra task returns NaN so the sweep goes on (Optuna marks
  such a trial as failed).
* :func:`check_ddp_in_multirun` refuses a subprocess-launched DDP strategy inside a Hydra multirun: Lightning
  would re-run ``sys.argv`` in each child process, i.e. the whole sweep again.
* :class:`SweepSummary` (a Hydra callback, see ``conf/hydra/default.yaml``) prints a Rich table of every job's
  status and headline metric when the sweep ends, writes ``sweep_summary.json`` and sets the exit status.
"""

from __future__ import annotations

import json
import logging
import math
import os
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lossbench.errors import ConfigError, LossbenchError
from lossbench.record import (
    FAILED,
    FILENAME,
    INTERRUPTED,
    MISSING,
    OK,
    STATUSES,
    UNREADABLE,
    RunRecord,
    read_record,
    write_record,
)

log = logging.getLogger("lossbench")

#: strategies whose launcher starts its workers by running the script again (Lightning's subprocess launcher)
_RELAUNCHING = ("ddp", "fsdp", "deepspeed", "auto")
#: workers started inside the running process: safe under a multirun
_IN_PROCESS = ("spawn", "fork", "notebook")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# --- failed jobs ----------------------------------------------------------------------------------------
def root_error(err: BaseException) -> BaseException:
    """The :class:`LossbenchError` behind ``err`` (e.g. wrapped by Hydra) or ``err``."""
    seen, cause = set(), err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, LossbenchError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return err


def one_line(err: BaseException) -> str:
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def record_failure(cfg: DictConfig, err: BaseException, status: str = FAILED) -> dict[str, Any]:
    """Write ``<job dir>/metrics.json`` with ``status: failed`` (or ``interrupted``) and return it."""
    hc = HydraConfig.get() if HydraConfig.initialized() else None
    choices = dict(hc.runtime.choices) if hc is not None else {}
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation may be what failed: keep the raw config then
        config = OmegaConf.to_container(cfg, resolve=False)
    cause = root_error(err)
    record = RunRecord(
        status,
        error={
            "type": type(cause).__name__,
            "message": " ".join(ln.strip() for ln in str(cause).splitlines() if ln.strip()),
            "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
        },
        loss=choices.get("loss", "?"),
        data=choices.get("data", "?"),
        model=choices.get("model", "?"),
        seed=_int_or_none(cfg.get("seed")),  # a seed of the wrong type may be what failed: it is in config
        data_seed=_int_or_none(cfg.get("data_seed")),
        overrides=list(hc.overrides.task) if hc is not None else [],
        job_num=hc.job.num if hc is not None and in_multirun() else None,
        config=config,
    )
    write_record(record, Path(cfg.paths.output_dir))
    return record.to_dict()


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- DDP inside a multirun ------------------------------------------------------------------------------
def _device_count(devices: Any, accelerator: Any) -> int:
    """How many devices a Lightning ``devices`` value asks for (``-1``/``auto``: what is visible)."""
    if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:
            return len([d for d in text.split(",") if d.strip()])
        devices = -1 if text == "auto" else int(text)
    if devices is None or devices == -1:
        if str(accelerator) in ("gpu", "cuda", "auto"):
            import torch

            return torch.cuda.device_count()
        return 1 if devices is None else os.cpu_count() or 1
    return int(devices)


def _launched_externally() -> bool:
    """SLURM (``srun``) or torchrun already started one process per device: Lightning relaunches nothing."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect()


def check_ddp_in_multirun(trainer_cfg: DictConfig | None) -> None:
    """Raise :class:`ConfigError` when ``trainer_cfg`` would make Lightning re-run a multirun's script."""
    if trainer_cfg is None:
        return
    strategy = trainer_cfg.get("strategy", "auto")
    if not isinstance(strategy, str):  # an instantiated strategy object: the user knows what they do
        return
    name = strategy.lower()
    if not name.startswith(_RELAUNCHING) or any(k in name for k in _IN_PROCESS):
        return
    devices = _device_count(trainer_cfg.get("devices", "auto"), trainer_cfg.get("accelerator", "auto"))
    processes = devices * int(trainer_cfg.get("num_nodes", 1) or 1)
    if processes <= 1 or _launched_externally():
        return
    raise ConfigError(
        f"trainer.strategy={strategy} with {processes} processes cannot run inside a Hydra multirun: "
        "Lightning's DDP launcher re-runs the command line in each child process, i.e. the whole sweep. "
        "Use trainer.strategy=ddp_spawn for a sweep on one machine (workers are spawned inside each job), "
        "or hydra/launcher=slurm with hydra.launcher.tasks_per_node=<devices> (srun starts one process per "
        "device), or loop over single runs (python train.py trainer=ddp loss=...)"
    )


# --- one line per job, a table at the end ------------------------------------------------------------
#: the number of jobs of the multirun running in this process (Hydra's basic sweeper), else None
_SWEEP_SIZE: int | None = None


def sweep_size(task_overrides: list[str]) -> int | None:
    """How many jobs the basic sweeper makes of these overrides (the product of the swept values' counts)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    size = 1
    try:
        for override in OverridesParser.create().parse_overrides(task_overrides):
            if override.is_sweep_override():
                size *= len(list(override.sweep_string_iterator()))
    except Exception:  # a sweep the basic sweeper does not enumerate (e.g. an interval): no count
        return None
    return size


def job_line(summary: dict[str, Any]) -> str:
    """``job #4 of 12 (loss=focal seed=1): best val/acc=0.9500 | test/acc=0.9417`` for a finished job."""
    hc = HydraConfig.get()
    of = f" of {_SWEEP_SIZE}" if _SWEEP_SIZE else ""
    monitor = summary["monitor"]
    first = headline(summary["test"])
    tested = f" | {first[0]}={first[1]:.4f}" if first else ""
    overrides = " ".join(hc.overrides.task)
    return f"job #{hc.job.num}{of} ({overrides}): best {monitor['metric']}={monitor['best']:.4f}{tested}"


# --- the end-of-sweep table -----------------------------------------------------------------------------
HEADLINE = ("test/acc", "test/map", "test/rmse")


def headline(test: dict[str, float]) -> tuple[str, float] | None:
    """The first of :data:`HEADLINE` among a run's test metrics, with its value."""
    return next(((k, test[k]) for k in HEADLINE if k in test), None)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Hydra job directories of a sweep (those holding ``.hydra/`` or ``metrics.json``), by job number."""
    found = {p.parent for p in sweep_dir.glob(f"*/{FILENAME}")} | {
        p.parent for p in sweep_dir.glob("*/.hydra") if p.is_dir()
    }
    return sorted(found, key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))


def read_job(job_dir: Path) -> dict[str, Any]:
    """One job's status row: ok / failed or interrupted (its error) / missing or unreadable (the reason)."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = list(OmegaConf.load(overrides_file)) if overrides_file.is_file() else []
    record = read_record(job_dir)
    row: dict[str, Any] = {"job": job_dir.name, "dir": str(job_dir), "overrides": overrides}
    row.update(status=record.status, loss=record.loss, seed=record.seed)
    if not record.ok:
        row["error"] = record.reason
        return row
    monitor = record.monitor or {}
    row["monitor"] = monitor.get("metric")
    row["best"] = monitor.get("best")
    test = record.test or {}
    row["headline"] = headline(test)
    return row


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else str(value)


def common_overrides(rows: list[dict[str, Any]]) -> list[str]:
    """Overrides shared by every job (shown once in the title instead of on every row)."""
    lists = [r["overrides"] for r in rows if r["overrides"]]
    if len(lists) < 2:
        return []
    return [o for o in lists[0] if all(o in other for other in lists[1:])]


def render_table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    common = common_overrides(rows)
    if common:
        title += f"\ncommon overrides: {' '.join(common)}"

    table = Table(title=title, title_justify="left")
    for col in ("job", "overrides", "status", "best val", "headline test", "error"):
        table.add_column(col, overflow="fold")
    style = {OK: "green", FAILED: "red", INTERRUPTED: "yellow", MISSING: "yellow", UNREADABLE: "yellow"}
    for row in rows:
        best = f"{row['monitor']}={_fmt(row['best'])}" if row.get("monitor") else ""
        headline = f"{row['headline'][0]}={_fmt(row['headline'][1])}" if row.get("headline") else ""
        status = row["status"]
        table.add_row(
            row["job"],
            " ".join(o for o in row["overrides"] if o not in common),
            f"[{style.get(status, 'white')}]{status}[/]",
            best,
            headline,
            row.get("error", ""),
        )
    return table


class SweepSummary(Callback):
    """Hydra callback: after a multirun, a table of every job, ``sweep_summary.json`` and the exit status.

    Args:
        fail_on_job_error: exit with status 1 (after the table) when any job failed or left no metrics, so
            scripts and CI notice; the other jobs have finished either way.
        ddp_guard: refuse a relaunching DDP strategy before the first job (see :func:`check_ddp_in_multirun`).
    """

    def __init__(self, fail_on_job_error: bool = True, ddp_guard: bool = True) -> None:
        self.fail_on_job_error = fail_on_job_error
        self.ddp_guard = ddp_guard

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _SWEEP_SIZE
        if "BasicSweeper" in str(config.hydra.sweeper.get("_target_", "")):
            _SWEEP_SIZE = sweep_size(list(config.hydra.overrides.task))
        if not self.ddp_guard:
            return
        try:
            check_ddp_in_multirun(config.get("trainer"))
        except ConfigError as err:
            log.error("%s: %s", type(err).__name__, err)
            raise SystemExit(2) from None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print_sweep_summary(Path(config.hydra.sweep.dir), fail=self.fail_on_job_error)


def print_sweep_summary(sweep_dir: Path, fail: bool = True) -> None:
    """Print the table of a sweep's jobs, write ``sweep_summary.json``; ``fail``: exit 1 if a job did not
    finish."""
    from rich.console import Console

    summary = [read_job(d) for d in job_dirs(sweep_dir)]
    counts = {s: sum(r["status"] == s for r in summary) for s in STATUSES}
    title = f"sweep {sweep_dir}: {len(summary)} jobs, " + ", ".join(
        f"{n} {s}" for s, n in counts.items() if n or s in (OK, FAILED, MISSING)
    )
    if sweep_dir.is_dir():
        (sweep_dir / "sweep_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console = Console(width=max(120, Console().width))
    console.print(render_table(summary, title))
    console.print(f"report: lossbench compare {sweep_dir}")
    if fail and counts["ok"] < len(summary):
        unfinished = len(summary) - counts["ok"]
        log.error("%d of %d sweep jobs did not finish: exit status 1", unfinished, len(summary))
        raise SystemExit(1)
