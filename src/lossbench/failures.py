"""The record of a run that did not finish: ``metrics.json`` with ``status: failed`` or ``interrupted``.

In a multirun a failing job is recorded and the sweep goes on (the Hydra task returns NaN, so Optuna marks
such a trial failed); an interrupted run is recorded until ``resume=true`` finishes it.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lossbench.config import in_multirun
from lossbench.errors import message_line, root_error
from lossbench.overrides import override_list
from lossbench.record import FAILED, RunRecord, write_record

#: the loss each run dir trains, by its resolved path, noted when its Trainer is built (``loss=auto``
#: resolved to the task's baseline loss): a run failing after that names the loss it trained
TRAINED_LOSS: dict[Path, str] = {}


def note_trained_loss(output_dir: str | Path, loss_name: str) -> None:
    """Remember that the run writing to ``output_dir`` trains ``loss_name`` (for its failure record)."""
    TRAINED_LOSS[Path(output_dir).resolve()] = loss_name


def trained_loss(output_dir: str | Path) -> str | None:
    """The loss the run writing to ``output_dir`` trains, once its Trainer is built in this process (the
    run has started: its failure is recorded); None before."""
    return TRAINED_LOSS.get(Path(output_dir).resolve())


#: the run dirs whose ``ok`` record this process wrote: a stop after it (while W&B finishes) keeps it
FINISHED: set[Path] = set()


def note_finished(output_dir: str | Path) -> None:
    """Remember that this process wrote the ``ok`` record of the run in ``output_dir``."""
    FINISHED.add(Path(output_dir).resolve())


def finished_here(output_dir: str | Path) -> bool:
    """Whether this process wrote the ``ok`` record of the run in ``output_dir``."""
    return Path(output_dir).resolve() in FINISHED


def record_failure(
    cfg: DictConfig, err: BaseException, status: str = FAILED, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Write ``<run dir>/metrics.json`` with ``status`` (failed or interrupted), the error, its traceback,
    the overrides and the config; return the record as its JSON object. The loss is the run's own
    (``loss_name``, resolved when it was composed), and ``overrides`` what the record names (by default
    the running Hydra job's): several runs composed before any trains (packed together) each keep theirs."""
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
            "message": message_line(cause),
            "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
        },
        loss=trained_loss(cfg.paths.output_dir) or own_loss_name(cfg) or choices.get("loss", "?"),
        data=choices.get("data", "?"),
        model=choices.get("model", "?"),
        seed=_int_or_none(cfg.get("seed")),  # a seed of the wrong type may be what failed: it is in config
        data_seed=_int_or_none(cfg.get("data_seed")),
        overrides=list(overrides)
        if overrides is not None
        else override_list(hc.overrides.task if hc is not None else None),
        job_num=hc.job.num if hc is not None and in_multirun() else None,
        config=config,
    )
    write_record(record, Path(cfg.paths.output_dir))
    return record.to_dict()


def own_loss_name(cfg: DictConfig) -> str | None:
    """The run's ``loss_name`` (its ``loss`` option), or None where it is not set or cannot be resolved."""
    try:
        name = cfg.get("loss_name")
    except Exception:  # an interpolation of the Hydra node, outside a Hydra job
        return None
    return str(name) if name else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
