"""One training job of a tuning run, composed from overrides with Hydra's compose API and run in-process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from lossbench.config import CONFIG_DIR
from lossbench.metrics import resolve_monitor


def compose_config(overrides: list[str]) -> DictConfig:
    """``train.yaml`` with ``overrides``, as ``python train.py <overrides>`` composes it (Hydra node kept)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def compose_job(overrides: list[str], run_dir: Path, monitor: tuple[str, str], task_name: str) -> DictConfig:
    """The config of one job writing into ``run_dir``, optimising ``monitor`` = (metric, mode)."""
    metric, mode = monitor
    cfg = compose_config(
        [f"task_name={task_name}", *overrides, f"monitor.metric={metric}", f"monitor.mode={mode}"]
    )
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} interpolations and the chosen options
    with open_dict(cfg):
        del cfg.hydra  # as in a Hydra app's task function
        cfg.paths.root_dir = os.getcwd()
        cfg.paths.output_dir = str(run_dir)
    return cfg


def run_job(cfg: DictConfig, callbacks: list[Any]) -> dict[str, Any]:
    from lossbench.run import run

    Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)
    return run(cfg, extra_callbacks=callbacks)


def data_module(cfg: DictConfig, scratch: Path) -> Any:
    """The data module of the composed ``cfg`` (Hydra node kept), built, fetched and set up for fitting as
    a training run would (:func:`lossbench.build.build_data`), with ``scratch`` as the output dir."""
    from lossbench.build import build_data

    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(scratch)
        cfg.paths.root_dir = os.getcwd()
    return build_data(cfg)


def monitor_of(overrides: list[str], scratch: Path) -> tuple[str, str]:
    """``(monitor.metric, monitor.mode)`` of the composed config; a null metric is the data's task default."""
    cfg = compose_config(overrides)
    task = None if cfg.monitor.metric else data_module(cfg, scratch).task
    return resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, task)
