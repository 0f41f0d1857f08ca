"""One run: check the config, build data/model/loss, fit, test the best checkpoint, write the run's files.

:func:`run` is what ``python train.py`` (:mod:`lossbench.train`), ``lossbench tune`` and the tests call.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lossbench.build import (
    build_data,
    build_module,
    check_accelerator,
    check_trainer_options,
    describe_data,
)
from lossbench.checkpointing import OverridesInCheckpoint
from lossbench.config import check_required, check_types, chosen
from lossbench.data.base import InMemoryDataModule
from lossbench.directions import is_descriptive
from lossbench.errors import ConfigError
from lossbench.interrupt import RunInterrupted, interrupted_message, stopped_by_signal
from lossbench.loggers import build_loggers, finish_wandb, init_wandb_run, log_wandb_summary
from lossbench.logs import route_lightning_to_root
from lossbench.metrics import with_monitor
from lossbench.perf import Stopwatch
from lossbench.predictions import FILENAME as PREDICTIONS_FILE
from lossbench.predictions import save_test_predictions
from lossbench.record import OK, RunRecord, write_record
from lossbench.resume import (
    LAST_CHECKPOINT,
    checkpoint_epoch,
    drop_csv_rows_after_epoch,
    resume_checkpoint,
    run_overrides,
    wandb_run_id,
)
from lossbench.sweep import in_multirun

log = logging.getLogger("lossbench")

#: the class index -> label map of a data set with named classes, in the run dir
LABELS_FILE = "labels.json"

# Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (a CUDA check that leaves CUDA uninitialised, so
# forked processes can still use it). Where no GPU is visible, every torch.cuda.is_available() then tries
# to load NVML again (~70 µs; torch's optimizers ask twice per step): with no GPU there is nothing to
# protect, so use torch's own check.
if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"

route_lightning_to_root()  # each Lightning message once, through Hydra's handlers

# noise from dependencies that says nothing about the user's run
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
warnings.filterwarnings("ignore", message=r".*anonymous setting has no effect.*")


def metric_values(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The ``prefix`` metrics (``val/``, ``test/``) of Lightning's results as floats, sorted by name."""
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefix)}


def record_fields(
    cfg: DictConfig, loss: Any, dm: Any, resolved: dict[str, Any], overrides: list[str]
) -> dict[str, Any]:
    """The :class:`RunRecord` fields that say what was run: loss, data, model, seeds, overrides, config."""
    return {
        "loss": chosen("loss", type(loss).__name__),
        "data": chosen("data"),
        "model": chosen("model"),
        "seed": cfg.seed,
        "data_seed": cfg.data_seed,
        "overrides": overrides,
        "data_info": describe_data(dm),
        "config": {k: v for k, v in resolved.items() if k != "hydra"},
    }


@contextmanager
def stopped_by(trainer: Any, output_dir: Path) -> Iterator[None]:
    """A SIGTERM or Ctrl-C during fit/test becomes :class:`RunInterrupted` saying how to continue."""
    try:
        with stopped_by_signal(trainer):
            yield
    except RunInterrupted as err:
        last = output_dir / LAST_CHECKPOINT
        sweep_dir = Path(HydraConfig.get().sweep.dir) if in_multirun() else None
        last_epoch = checkpoint_epoch(last) if last.is_file() else None
        message = interrupted_message(err.signal_name, trainer.current_epoch, last, last_epoch, sweep_dir)
        raise RunInterrupted(err.signal_name, message) from None


def run(cfg: DictConfig, extra_callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train, validate and test one configuration; write its record (``metrics.json``); return the record as
    its JSON object (:meth:`lossbench.record.RunRecord.to_dict`).

    ``extra_callbacks`` join the configured ones (``lossbench tune`` passes its pruning callback). With
    ``test=false`` the test split is never read (tuning trials): no test metrics, no predictions.
    """
    start = time.perf_counter()
    watch = Stopwatch()  # phase wall times, in metrics.json as `timings` (see scripts/bench.py)
    output_dir = Path(cfg.paths.output_dir)
    check_required(cfg)
    check_types(cfg)
    check_accelerator(cfg)
    check_trainer_options(cfg)
    overrides = run_overrides()
    ckpt_path = resume_checkpoint(cfg, output_dir, overrides, sweep_job=in_multirun())
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    with watch("data"):
        dm = build_data(cfg)
    # null metric: the task's default; null mode: the metric's direction (val/nll -> min)
    cfg = with_monitor(cfg, dm.task)
    with watch("model"):
        loss, model, module = build_module(cfg, dm)
    if is_descriptive(cfg.monitor.metric):
        raise ConfigError(
            f"monitor.metric={cfg.monitor.metric} has no better direction (the target is the nominal level): "
            "use monitor.metric=val/coverage_error (calibration) or val/crps instead"
        )
    if cfg.monitor.metric not in module.metric_names("val"):
        raise ConfigError(
            f"monitor.metric={cfg.monitor.metric} is not a logged validation metric: choose one of "
            f"{', '.join(module.metric_names('val'))}"
        )

    resolved = OmegaConf.to_container(cfg, resolve=True)
    with watch("callbacks"):
        callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
        callbacks += [*(extra_callbacks or []), OverridesInCheckpoint(overrides)]
    wandb_id = None
    if rank_zero_only.rank == 0:
        # a resumed run keeps its W&B run id and drops CSV rows of epochs it is about to train again
        wandb_id = wandb_run_id(output_dir, ckpt_path)
        if ckpt_path is not None:
            drop_csv_rows_after_epoch(output_dir / "csv" / "metrics.csv", checkpoint_epoch(ckpt_path))
            log.info("resuming from %s", ckpt_path)
    try:
        with watch("loggers"):
            loggers = build_loggers(cfg.get("logger"), config=resolved, wandb_id=wandb_id)
        with watch("trainer"):
            trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        if trainer.world_size == 1:
            with watch("wandb_init"):  # what W&B's lazy init would cost at the start of fit
                init_wandb_run(loggers)
        with watch("fit"), stopped_by(trainer, output_dir):
            trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
        checkpoint = trainer.checkpoint_callback
        best_path = checkpoint.best_model_path if checkpoint is not None else ""
        best = checkpoint.best_model_score if checkpoint is not None else None
        val = metric_values(trainer.callback_metrics, "val/")
        testing = bool(cfg.get("test", True))
        test_results = []
        if testing:
            with watch("test"), stopped_by(trainer, output_dir):
                test_results = trainer.test(  # the results table, unless one of many jobs
                    module,
                    datamodule=dm,
                    ckpt_path=best_path or None,
                    verbose=not in_multirun(),
                    weights_only=True,
                )
        record = RunRecord(
            OK,
            **record_fields(cfg, loss, dm, resolved, overrides),
            monitor={
                "metric": cfg.monitor.metric,
                "mode": cfg.monitor.mode,
                "best": float(best) if best is not None else val.get(cfg.monitor.metric),
                "best_checkpoint": best_path,
            },
            val=val,
            test=metric_values(test_results[0] if test_results else {}, "test/"),
            epochs=trainer.current_epoch,
            wall_s=round(time.perf_counter() - start, 3),
            timings=watch.times,
        )
        if trainer.is_global_zero:
            write_run_files(record, output_dir)
            if testing:  # test-set probabilities of the tested checkpoint, for the reliability diagrams
                write_predictions(trainer, module, dm, best_path, output_dir)
        summary = record.to_dict()
        log_wandb_summary(summary)  # best val + test metrics in the W&B run summary
        return summary
    finally:
        finish_wandb()


def write_run_files(record: RunRecord, output_dir: Path) -> None:
    """``metrics.json``, and ``labels.json`` (class index -> the data's own label) where classes are named."""
    write_record(record, output_dir)
    if (record.data_info or {}).get("labels") is not None:
        labels = dict(enumerate(record.data_info["labels"]))
        (output_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2))


def write_predictions(trainer: Any, module: Any, dm: Any, best_path: str, output_dir: Path) -> None:
    """``predictions.npz`` of the tested checkpoint (one process: ``trainer.test`` left its weights)."""
    tested = best_path if trainer.world_size > 1 and best_path else None
    if trainer.world_size == 1 or isinstance(dm, InMemoryDataModule):
        save_test_predictions(module, dm, output_dir / PREDICTIONS_FILE, tested)
    else:  # a streamed test split is sharded over the processes
        log.info("no %s under DDP for a streamed data set: test it on one process", PREDICTIONS_FILE)
