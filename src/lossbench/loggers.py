"""Experiment loggers: W&B (online only with credentials, offline otherwise) and a local CSV copy."""

from __future__ import annotations

import csv
import importlib.util
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger  # (imports wandb only when used)
from omegaconf import DictConfig, OmegaConf

from lossbench.checkpointing import RunDirCheckpoint
from lossbench.errors import (
    ConfigError,
    RunInterrupted,
    cause_of,
    exit_status,
    message_line,
    root_error,
)
from lossbench.record import WANDB_OVERRIDES_KEY
from lossbench.run_dir import RunDir
from lossbench.signals import raise_if_stopped
from lossbench.wandb_mode import offline_run_glob, resolve_wandb_mode

log = logging.getLogger(__name__)


def wandb_config(resolved: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """What a run's W&B config holds: its resolved config and, under
    :data:`~lossbench.record.WANDB_OVERRIDES_KEY`, its overrides (from which ``lossbench compare`` tells
    loss settings and experimental settings apart)."""
    return {**resolved, WANDB_OVERRIDES_KEY: list(overrides)}


def build_loggers(
    cfg: DictConfig | Mapping[str, Any] | None,
    config: dict[str, Any],
    wandb_id: str | None = None,
    replay: bool = True,
) -> list[Logger]:
    """Instantiate each configured logger; W&B gets its resolved mode, the run's resolved ``config`` and
    its run id (the same id when a run is resumed); every other logger gets ``config`` as its
    hyper-parameters (CSV and TensorBoard: ``hparams.yaml``; MLflow: the run's params), as the Trainer
    leaves that to lossbench (``trainer.enable_autolog_hparams=false``: the module holds no hparams).
    ``replay``: a W&B run continued offline logs the run's CSV rows first (:func:`replay_rows`); off for a
    caller that logs the whole history itself."""
    loggers: list[Logger] = []
    for name, logger_cfg in (cfg or {}).items():
        if logger_cfg is None:
            continue
        if name == "wandb":
            save_dir = Path(str(logger_cfg.save_dir))
            mode = resolve_wandb_mode(logger_cfg.get("mode", "auto"), save_dir)
            output_dir = Path(config["paths"]["output_dir"])
            continued = bool(wandb_id and mode == "offline" and offline_runs(save_dir, wandb_id))
            wandb_id = continued_offline(output_dir, str(wandb_id), save_dir) if continued else wandb_id
            tags = [*(logger_cfg.get("tags") or []), *stressor_tags(config)]
            # `config` is also the name of instantiate()'s first parameter: pass it to the partial
            extra = {"id": wandb_id, "resume": "allow"} if wandb_id else {}
            logger_cfg = OmegaConf.to_container(logger_cfg, resolve=True)
            if logger_cfg.pop("quiet", False):  # W&B's own console output, shortened
                import wandb

                extra["settings"] = wandb.Settings(quiet=True)
            factory = instantiate(logger_cfg, mode=mode, tags=tags, _partial_=True, **extra)
            loggers.append(factory(config=config))
            if continued and replay:  # the epochs trained before the stop, in the continued run's history
                replay_rows(loggers[-1], RunDir(output_dir).csv)
            if mode == "disabled":
                log.info("W&B logging disabled")
            else:
                log.info("W&B logging %s to %s", mode, save_dir)
        else:
            loggers.append(_instantiate_optional(name, logger_cfg))
            loggers[-1].log_hyperparams(config)
    return loggers


class BestCheckpointWandbLogger(WandbLogger):
    """Lightning's :class:`~lightning.pytorch.loggers.WandbLogger`, whose ``log_model`` leaves out the
    files of lossbench's unmonitored ``last_checkpoint`` (``last.ckpt``, kept for ``resume=true``).

    Lightning gives the artifact's ``best`` alias to each checkpoint callback's own best file, and an
    unmonitored callback's best is its latest: beside the best epoch's checkpoint the alias ended on
    ``last.ckpt``. Without ``log_model`` nothing is uploaded either way.
    """

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        # the callback comes as a weakref.proxy (ModelCheckpoint passes proxy(self)): its __class__ is its own
        if checkpoint_callback.__class__ is RunDirCheckpoint and checkpoint_callback.monitor is None:
            return
        super().after_save_checkpoint(checkpoint_callback)


def replay_rows(logger: Logger, metrics_csv: Path) -> int:
    """Log the rows of a run's ``csv/metrics.csv`` (the epochs it trained before it stopped; the resume
    dropped those of the epochs it trains again) to ``logger`` at their steps; how many.

    A run stopped by SIGKILL leaves an offline W&B run of none of them (W&B writes its file in blocks of
    32 KiB, and a kill loses the block not yet written): its continued run starts from these rows, so it
    holds the run's whole history, whatever the stopped one kept."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        step = int(float(row.pop("step")))
        values = {k: int(v) if v.lstrip("-").isdigit() else float(v) for k, v in row.items() if v}
        logger.log_metrics(values, step=step)  # the epoch an int, as Lightning logs it
    return len(rows)


def offline_runs(save_dir: Path, run_id: str) -> list[Path]:
    """The offline W&B runs of id ``run_id`` under ``save_dir`` (``wandb/offline-run-<time>-<id>``)."""
    return sorted((save_dir / "wandb").glob(f"offline-run-*-{run_id}"))


def continued_offline(output_dir: Path, run_id: str, save_dir: Path) -> str:
    """The W&B run id of a run (writing to ``output_dir``) continued offline whose first part is the offline
    run ``run_id`` (under ``save_dir``, W&B's ``dir``): a new one, stored in the run dir.

    W&B cannot continue a run offline (``resume`` needs its server): a second offline run of the same id
    starts its history at step 0 again, and uploading both lets the later overwrite the earlier steps.
    So the continued run is a new W&B run, of the same name, group and job type; ``lossbench compare
    --wandb`` counts the stopped part as superseded by it. Online, the same id continues the run.
    """
    from lossbench.resume import new_wandb_run_id

    new_id = new_wandb_run_id(output_dir)
    log.info(
        "W&B cannot continue run %s offline: the continued run is W&B run %s (same name and group); "
        "upload both with `wandb sync %s`",
        run_id,
        new_id,
        offline_run_glob(save_dir),
    )
    return new_id


#: loggers whose package is an optional extra of lossbench: logger name -> (module, extra)
OPTIONAL_LOGGERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def _instantiate_optional(name: str, logger_cfg: DictConfig) -> Logger:
    """Instantiate a logger; a missing optional package is a :class:`ConfigError` naming the extra."""
    if name in OPTIONAL_LOGGERS:
        module, extra = OPTIONAL_LOGGERS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"logger={name} needs the {module} package, which is not installed: "
                f"pip install 'lossbench[{extra}]', or choose logger=csv"
            )
    return instantiate(logger_cfg)


#: data stressors that become W&B tags (``imbalance=100``, ``noise=0.2``) when set to a non-trivial value
STRESSOR_TAGS = {"imbalance_factor": ("imbalance", 1), "label_noise": ("noise", 0)}


def stressor_tags(config: dict[str, Any]) -> list[str]:
    """Tags for the data stressors present in the resolved config, e.g. ``["imbalance=100", "noise=0.2"]``."""
    data = config.get("data") or {}
    tags = []
    for key, (tag, neutral) in STRESSOR_TAGS.items():
        value = data.get(key) if isinstance(data, dict) else None
        if value is not None and value != neutral:
            tags.append(f"{tag}={value:g}" if isinstance(value, (int, float)) else f"{tag}={value}")
    return tags


def log_wandb_summary(summary: dict[str, Any]) -> None:
    """Put a run's final metrics into the active W&B run's summary (best monitored val + test metrics).

    W&B's summary otherwise holds the *last* logged value of each key, i.e. the last epoch's validation
    metrics, not those of the checkpoint that was tested.
    """
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return
    monitor = summary.get("monitor", {})
    values: dict[str, Any] = {f"final/{k}": v for k, v in summary.get("test", {}).items()}
    if monitor.get("metric") and monitor.get("best") is not None:
        values[f"best/{monitor['metric']}"] = monitor["best"]
        values["best/monitor"] = monitor["best"]
    values.update({"final/epochs": summary.get("epochs"), "final/wall_s": summary.get("wall_s")})
    # as its record: a run resumed after a failure or a stop leaves that one's status behind
    values["status"] = summary.get("status", "ok")
    run.summary.update(values)


def init_wandb_run(loggers: list[Logger]) -> None:
    """Start the W&B run of a W&B logger now rather than lazily at the start of ``fit`` (same process,
    same run); lets the run's setup time be measured apart from training. A SIGTERM that ``wandb.init``
    swallowed (it catches ``Exception`` in places, :class:`RunInterrupted` too) is raised again here."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment  # noqa: B018 - the property calls wandb.init once
    raise_if_stopped()


def finish_wandb(failure: BaseException | None = None) -> None:
    """Close the active W&B run, if any, so the next multirun job starts its own run.

    A run ended by ``failure`` ends as W&B's ``failed`` run, with the exit status of its error (1, or 2
    for a lossbench error; 130 or 143 when a signal stopped it; a sweep ends with 1 whatever its jobs'),
    and its summary's ``status`` (``failed`` or ``interrupted``, as its ``metrics.json``) and ``error``
    say why. Without it W&B would show the run as finished.
    """
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return
    if failure is None or _summary_status(run) == "ok":  # a stop after the run's record was written
        wandb.finish()
        return
    stop = cause_of(failure, RunInterrupted) or cause_of(failure, KeyboardInterrupt)
    cause = stop or root_error(failure)
    if not (error := message_line(cause)) and stop is not None:  # a stop outside fit and test: said later
        error = f"stopped by {getattr(stop, 'signal_name', 'SIGINT')}"
    run.summary.update({"status": "interrupted" if stop is not None else "failed", "error": error})
    wandb.finish(exit_code=exit_status(cause))


def _summary_status(run: Any) -> Any:
    """The ``status`` in a W&B run's summary (:func:`log_wandb_summary` sets ``ok``), None without one."""
    try:
        return run.summary["status"]
    except (KeyError, TypeError):
        return None


@contextmanager
def finishing_wandb() -> Iterator[None]:
    """End the active W&B run when the block ends: finished, or failed by the exception leaving it."""
    try:
        yield
    except BaseException as err:
        finish_wandb(err)  # once: a second stop while it runs must not end the run as finished instead
        raise
    else:
        finish_wandb()
