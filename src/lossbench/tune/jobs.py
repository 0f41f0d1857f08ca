"""One training job of a tuning run, composed from overrides (:func:`lossbench.config.compose_run`) and run
in-process, quietly: the console gets one line per job (:func:`job_line`), every table stays in the job's
``metrics.json``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from lossbench.config import compose_run
from lossbench.logs import LIGHTNING, only_warnings
from lossbench.signals import raise_if_stopped
from lossbench.task import resolve_monitor

#: loggers whose INFO lines (accelerators found, checkpoint restored, fit stopped) a job keeps to itself
CHATTY = (*LIGHTNING, "optuna")
#: (message, category) of the warnings :func:`quiet` has shown
SHOWN: set[tuple[str, type]] = set()


def tags_with(kind: str) -> str:
    """The override that tags a tuning run ``kind`` (``trial``, ``final``) besides its loss, data and model,
    the tags every run has (``tags`` in ``train.yaml``)."""
    return f"tags=[${{loss_name}},${{hydra:runtime.choices.data}},${{hydra:runtime.choices.model}},{kind}]"


def compose_job(
    overrides: list[str], run_dir: Path, monitor: tuple[str, str], task_name: str, name: str | None = None
) -> DictConfig:
    """The config of one job writing into ``run_dir``, optimising ``monitor`` = (metric, mode), without a
    progress bar (:func:`without_progress_bar`); ``name``: its W&B run's name, where it logs to W&B (a
    trial's: its number, where every trial of a loss has the same seed)."""
    metric, mode = monitor
    given = [f"task_name={task_name}", *overrides, f"monitor.metric={metric}", f"monitor.mode={mode}"]
    cfg = without_progress_bar(compose_run(given, output_dir=run_dir))
    if name is not None and OmegaConf.select(cfg, "logger.wandb") is not None:
        with open_dict(cfg):
            cfg.logger.wandb.name = name
    return cfg


def without_progress_bar(cfg: DictConfig) -> DictConfig:
    """``cfg`` with its progress-bar callbacks removed and ``trainer.enable_progress_bar=false`` (a run
    without a progress display prints no test table either)."""
    with open_dict(cfg):
        for key, callback in (cfg.get("callbacks") or {}).items():
            if callback is not None and "ProgressBar" in str(callback.get("_target_", "")):
                cfg.callbacks[key] = None
        cfg.trainer.enable_progress_bar = False
    return cfg


@contextmanager
def quiet() -> Iterator[None]:
    """Lightning's and Optuna's INFO lines off, and each distinct warning shown once in this process
    rather than once per job (a filter's "once" does not do it: a module's record of shown warnings is
    cleared whenever any code changes the filters, as each run does)."""
    previous = warnings.showwarning

    def show_once(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if (str(message), category) not in SHOWN:
            SHOWN.add((str(message), category))
            previous(message, category, *args, **kwargs)

    warnings.showwarning = show_once
    try:
        with only_warnings(CHATTY):
            yield
    finally:
        warnings.showwarning = previous


def run_job(cfg: DictConfig, callbacks: list[Any], overrides: list[str] | None = None) -> dict[str, Any]:
    """:func:`lossbench.run.run` of ``cfg``, quietly (:func:`quiet`); ``overrides``: what its record names
    as the run's overrides (by default the ones it was composed with)."""
    from lossbench.run import run

    raise_if_stopped()
    Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)
    with quiet():
        return run(cfg, callbacks, overrides=overrides)


def job_line(summary: dict[str, Any]) -> str:
    """``best val/acc=0.9500 | test/acc=0.9417``: a finished job's monitored and headline test values."""
    from lossbench.sweep import headline

    monitor = summary.get("monitor") or {}
    best = monitor.get("best")
    line = f"best {monitor.get('metric')}=" + ("n/a" if best is None else f"{best:.4f}")
    first = headline(summary) if summary.get("test") else None
    return line + (f" | {first[0]}={first[1]:.4f}" if first else "")


def data_module(overrides: list[str], scratch: Path) -> Any:
    """The data module of ``overrides``, built, fetched and set up for fitting as a training run would
    (:func:`lossbench.build.build_data`), with ``scratch`` as the output dir."""
    from lossbench.build import build_data
    from lossbench.checks import check_data_files, check_run

    cfg = compose_run(overrides, output_dir=scratch)
    check_run(cfg)  # a config problem in one line (data=table without data.path), as train.py names it
    check_data_files(cfg)
    return build_data(cfg)


def monitor_and_task(overrides: list[str], scratch: Path) -> tuple[tuple[str, str], Any]:
    """``(monitor.metric, monitor.mode)`` of the composed config, filled from the data's task spec, and
    that task (the data module built once, as a training run builds it)."""
    cfg = compose_run(overrides, output_dir=scratch)
    task = data_module(overrides, scratch).task
    return resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, task), task


def check_overrides_apply(overrides: list[str], losses: list[str], scratch: Path) -> None:
    """Refuse, before anything trains, an override that the search replaces (a key of a loss's search
    space: every trial sets its own value) and one that a loss's run cannot compose (``loss.gamma=2`` with
    ``ce``): every loss gets the same overrides."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lossbench.argument_checks import check_options
    from lossbench.errors import ConfigError, one_line
    from lossbench.overrides import override_key, sets_in
    from lossbench.tune import space as sp

    not_of_the_loss = [o for o in overrides if not sets_in(override_key(o), "loss")]
    try:  # an override no run can take, whatever its loss: named as such, not blamed on a loss
        compose_run(not_of_the_loss, output_dir=scratch)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"these overrides do not compose: {one_line(err)}") from None
    for loss in losses:
        for override in overrides:
            key = override_key(override)
            if (searched := sp.space_file(loss, key)) is not None:
                raise ConfigError(
                    f"{override}: the search tunes {key} for {loss} ({searched.parent.name}/{searched.name} "
                    "in the lossbench package), so every trial would replace it: leave it out"
                )
        try:
            check_options(compose_run([*overrides, f"loss={loss}"], output_dir=scratch))
        except ConfigError as err:
            raise ConfigError(f"--loss {loss}: {err} (every --loss gets the same overrides)") from None
        except (HydraException, OmegaConfBaseException) as err:
            raise ConfigError(
                f"--loss {loss} cannot take these overrides ({one_line(err)}): every loss gets the same "
                "overrides, so pass only those every --loss accepts"
            ) from None
