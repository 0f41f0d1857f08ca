"""Gather runs from a local multirun directory (``metrics.json`` + ``csv/metrics.csv``) or from W&B.

Every run is kept, including failed ones and job directories that left no ``metrics.json`` ("missing"):
the report lists them instead of silently dropping them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossbench.integrity import damaged, read_curves
from lossbench.overrides import sets_in
from lossbench.record import (
    MISSING,
    OK,
    REPORT_JOB_TYPE,
    UNREADABLE,
    WANDB_OVERRIDES_KEY,
    RunRecord,
    read_record,
)
from lossbench.run_dir import MULTIRUN_NAME, RECORD_NAME, RunDir
from lossbench.tune.out_dir import ADVISE_RECORD, PILOT_DIR

#: the status of a failed or stopped run whose setting, loss and seed another run finished
SUPERSEDED = "superseded"
#: the status (and the tag) of a ``lossbench tune`` trial: a search step, not a replicate of its loss
TRIAL = "trial"
#: why ``lossbench advise``'s pilot run (``<out>/pilot``, status :data:`TRIAL`) is not compared
PILOT_NOTE = "lossbench advise's pilot (it timed the baseline), not compared"
#: override keys (and their sub-keys) that do not change the experiment: never split runs into settings
#: (a ``+sweep=`` preset's epochs do: :func:`assign_variants` reads them from the runs' configs)
NOT_CONDITIONS = (
    *("logger", "hydra", "resume", "ckpt_path", "tags", "task_name", "sweep"),
    *("paths.root_dir", "paths.output_dir"),  # where a run starts and writes (paths.data_dir is its data)
)


def is_condition(key: str) -> bool:
    """Whether an override key can change what is measured (``logger=csv`` cannot; ``data.*`` can)."""
    return not any(sets_in(key, k) for k in NOT_CONDITIONS)


@dataclass
class ReportRun:
    """One run as the report sees it: its run record as read (:mod:`lossbench.record`; for a run dir
    without a readable record, one naming what Hydra's saved overrides say the job was; for W&B, one built
    from the W&B run), and what the report adds to it.

    ``status`` is the record's, unless the report finds more: ``missing`` (an ok record without test
    metrics) or ``duplicate`` (the same setting, loss and replicate as an earlier run).
    """

    run_dir: str
    record: RunRecord
    status: str = ""
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # test metrics + "val/<m> (best)"
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # val metric -> (epoch, value)
    predictions: str | None = None
    source: str = "local"
    #: a ``lossbench tune`` final run's tuned parameters (its ``tuned.json``, as JSON); None for other runs
    tuned: str | None = None
    #: filled by :func:`~lossbench.report.variants.assign_variants`: the setting shared by runs compared
    #: together, and the variant label
    group: str = ""
    variant: str = ""

    def __post_init__(self) -> None:
        self.status = self.status or self.record.status
        if self.error is None and self.status != OK:
            self.error = self.record.reason or None

    @property
    def loss(self) -> str:
        return self.record.loss or "?"

    @property
    def data(self) -> str:
        return self.record.data or "?"

    @property
    def seed(self) -> int | None:
        return self.record.seed

    @property
    def data_seed(self) -> int | None:
        return self.record.data_seed

    @property
    def overrides(self) -> list[str]:
        return list(self.record.overrides or [])

    @property
    def monitor(self) -> dict[str, Any]:
        return self.record.monitor or {}

    @property
    def replicate(self) -> Any:
        """What tells this run apart from the other runs of its variant: its seed, and its data_seed
        when that is not 0 (runs differing in either are separate replicates, paired across variants)."""
        if self.seed is None:
            return self.run_dir
        return self.seed if not self.data_seed else f"{self.seed}{SPLIT_MARK}{self.data_seed}"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def partly_counted(self) -> bool:
        """An ok run with a metric left out of the statistics (see :meth:`take_metrics`)."""
        return self.ok and self.error is not None

    def take_metrics(self, values: dict[str, float]) -> None:
        """Keep the finite ``values`` as the run's metrics. A NaN or infinite value cannot be compared or
        averaged: it is left out of its metric's statistics and named in :attr:`error`, so that the report
        lists the run (dropped silently, it would favour the loss whose runs produce it)."""
        self.metrics = {k: v for k, v in values.items() if math.isfinite(v)}
        left_out = [f"{k}={v}" for k, v in values.items() if not math.isfinite(v)]
        if left_out:
            these = "this metric" if len(left_out) == 1 else "these metrics"
            self.error = f"{', '.join(left_out)}: not finite, so not in the statistics of {these}"


def metric_table(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers a report compares: test metrics (not ``test/loss``: scale differs per loss), best val."""
    values = {k: float(v) for k, v in (metrics.get("test") or {}).items() if k != "test/loss"}
    monitor = metrics.get("monitor") or {}
    if monitor.get("metric") and monitor.get("best") is not None:
        values[f"{monitor['metric']} (best)"] = float(monitor["best"])
    return values


def read_run(run_dir: Path, planned: list[str] | None = None) -> ReportRun:
    """The run in ``run_dir``; a ``metrics.json`` or overrides file of another shape makes it ``unreadable``
    (listed in the report) instead of stopping the report. ``planned``: the job's overrides as its sweep
    enumerates them, naming a job that never saved its own."""
    try:
        return _read_run(run_dir, planned)
    except (ValueError, TypeError, AttributeError, KeyError, OSError) as err:
        reason = f"unreadable run files: {type(err).__name__}: {err}"
        return ReportRun(str(run_dir), RunRecord(UNREADABLE, error={"type": UNREADABLE, "message": reason}))


def _read_run(run_dir: Path, planned: list[str] | None = None) -> ReportRun:
    files = RunDir(run_dir)
    record = read_record(run_dir)
    if record.status in (MISSING, UNREADABLE):  # what the job was, from the overrides Hydra saved
        overrides, chosen = files.overrides() or list(planned or []), files.choices()  # a default data set
        given = {**chosen, **dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)}
        record.loss, record.data, record.overrides = given.get("loss", "?"), given.get("data", "?"), overrides
        record.seed, record.data_seed = _int(given.get("seed")), _int(given.get("data_seed"))
        return ReportRun(str(run_dir), record)
    if record.overrides is None:  # a record written without them: Hydra's saved ones
        record.overrides = files.overrides()
    run = ReportRun(str(run_dir), record, tuned=tuned_params(files))
    if TRIAL in ((record.config or {}).get("tags") or []):  # its loss's tuned runs are under <out>/final
        run.status, run.error = TRIAL, "a tuning trial, not compared (its loss's final runs are)"
        return run
    if Path(run_dir).name == PILOT_DIR and (Path(run_dir).parent / ADVISE_RECORD).is_file():
        run.status, run.error = TRIAL, PILOT_NOTE
        return run
    if not record.ok:
        return run
    run.take_metrics(metric_table({"test": record.test, "monitor": run.monitor}))
    run.curves = read_curves(files.csv)
    run.predictions = str(files.predictions) if files.predictions.is_file() else None
    if not run.metrics:
        run.status, run.error = "missing", run.error or "metrics.json holds no test metrics"
    elif (problem := damaged(run_dir, record, run.curves)) is not None:
        run.status, run.error = "damaged", f"{problem}: restore it, or train the run again"
    return run


def tuned_params(files: RunDir) -> str | None:
    """The tuned parameters a ``lossbench tune`` final run was trained with (its ``tuned.json``, written
    again as sorted JSON), or None."""
    try:
        text = files.tuned.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:  # cut off by a kill: a configuration of its own
        return text


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


#: what joins a replicate's seed and data_seed in its key (:attr:`ReportRun.replicate`)
SPLIT_MARK = "/data_seed="


def replicate_parts(key: Any) -> tuple[Any, int]:
    """``(seed, data_seed)`` of a replicate key: ``3`` -> ``(3, 0)``, ``"3/data_seed=1"`` -> ``(3, 1)``;
    a key without a seed (a run dir) stands for itself, on split 0."""
    if isinstance(key, str):
        seed, mark, split = key.partition(SPLIT_MARK)
        if mark and _int(seed) is not None and _int(split) is not None:
            return int(seed), int(split)
    return key, 0


def collect_local(root: Path) -> list[ReportRun]:
    """Every run under ``root`` (a multirun dir, a parent of several, or one run dir); in a sweep dir
    (its ``multirun.yaml``) every job of the sweep, also one stopped before its run dir was written."""
    from lossbench.sweep import all_jobs

    root = Path(root)
    dirs = {p.parent for p in root.rglob(RECORD_NAME)}
    dirs |= {p.parent for p in root.rglob(".hydra") if p.is_dir() and RunDir(p.parent).has_overrides()}
    planned: dict[Path, list[str] | None] = {}
    for saved in root.rglob(MULTIRUN_NAME):
        planned |= dict(all_jobs(saved.parent))
    dirs |= set(planned)
    dirs = {d for d in dirs if "wandb" not in d.relative_to(root).parts}
    if not dirs:
        raise FileNotFoundError(f"no runs under {root}: expected <job>/metrics.json (a multirun directory)")

    def order(p: Path) -> tuple:
        return tuple((0, int(x)) if x.isdigit() else (1, x) for x in p.relative_to(root).parts)

    from lossbench.report.variants import assign_variants

    return assign_variants([read_run(d, planned.get(d)) for d in sorted(dirs, key=order)])


# --- W&B ------------------------------------------------------------------------------------------------
def collect_wandb(path: str, group: str, api: Any | None = None) -> list[ReportRun]:
    """Runs of W&B group ``group`` in ``entity/project`` ``path``, through ``wandb.Api`` (needs the network).

    Metrics come from each run's summary (``final/test/*``, ``best/monitor``, as written by lossbench),
    curves from its history; per-sample predictions are not uploaded, so reliability diagrams need the
    local run directories.
    """
    if api is None:
        import wandb

        api = wandb.Api(timeout=30)
    records = []
    for run in api.runs(path, filters={"group": group}):
        if run.job_type == REPORT_JOB_TYPE:  # a comparison table logged into the group, not a run of it
            continue
        config = dict(run.config or {})
        summary = dict(run.summary or {})
        tags = list(run.tags or [])
        identity = RunRecord(
            OK,
            loss=run.job_type or (tags[0] if tags else "?"),
            # the data set's name from the logged config (presets put other tags second)
            data=str((config.get("data") or {}).get("name") or (tags[1] if len(tags) > 1 else "?")),
            seed=config.get("seed"),
            data_seed=config.get("data_seed"),
            overrides=[str(o) for o in config.get(WANDB_OVERRIDES_KEY) or []],
        )
        record = ReportRun(f"wandb:{path}/{run.id}", identity, source="wandb")
        test = {k.removeprefix("final/"): v for k, v in summary.items() if k.startswith("final/test/")}
        if not test:
            test = {k: v for k, v in summary.items() if k.startswith("test/")}
        monitor = config.get("monitor") or {}
        best = summary.get("best/monitor")
        identity.monitor = {"metric": monitor.get("metric"), "mode": monitor.get("mode"), "best": best}
        record.take_metrics(metric_table({"test": test, "monitor": record.monitor}))
        if run.state != "finished" or not record.metrics:
            record.status = "failed" if run.state in ("failed", "crashed") else "missing"
            record.error = f"W&B state {run.state}" + (
                "" if record.metrics else ", no final metrics in summary"
            )
        else:
            keys = [k for k in summary if k.startswith("val/")]
            for row in run.history(keys=["epoch", *keys], pandas=False) if keys else []:
                for k in keys:
                    if row.get(k) is not None and row.get("epoch") is not None:
                        record.curves.setdefault(k, []).append((int(row["epoch"]), float(row[k])))
        records.append(record)
    if not records:
        raise LookupError(f"no W&B runs in {path} with group {group!r}")
    from lossbench.report.variants import assign_variants

    return assign_variants(records)
