"""One training job of a tuning run, composed from overrides (:func:`lossbench.config.compose_run`) and run
in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lossbench.config import compose_run
from lossbench.task import resolve_monitor


def compose_job(overrides: list[str], run_dir: Path, monitor: tuple[str, str], task_name: str) -> DictConfig:
    """The config of one job writing into ``run_dir``, optimising ``monitor`` = (metric, mode)."""
    metric, mode = monitor
    given = [f"task_name={task_name}", *overrides, f"monitor.metric={metric}", f"monitor.mode={mode}"]
    return compose_run(given, output_dir=run_dir)


def run_job(cfg: DictConfig, callbacks: list[Any], overrides: list[str] | None = None) -> dict[str, Any]:
    """:func:`lossbench.run.run` of ``cfg``; ``overrides``: what its record names as the run's overrides
    (by default the ones it was composed with)."""
    from lossbench.run import run

    Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)
    return run(cfg, callbacks, overrides=overrides)


def data_module(overrides: list[str], scratch: Path) -> Any:
    """The data module of ``overrides``, built, fetched and set up for fitting as a training run would
    (:func:`lossbench.build.build_data`), with ``scratch`` as the output dir."""
    from lossbench.build import build_data

    return build_data(compose_run(overrides, output_dir=scratch))


def monitor_of(overrides: list[str], scratch: Path) -> tuple[str, str]:
    """``(monitor.metric, monitor.mode)`` of the composed config, filled from the data's task spec."""
    cfg = compose_run(overrides, output_dir=scratch)
    task = None if cfg.monitor.metric else data_module(overrides, scratch).task
    return resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, task)
