"""One run, top to bottom: check → prepare → build → fit → test → record.

:func:`run` is what ``python train.py`` (:mod:`lossbench.train`), ``lossbench-eval`` (the same pipeline with
fitting off), ``lossbench tune``/``advise`` and the tests call.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from lossbench.build import build_data, build_module, build_trainer, data_info_of
from lossbench.checkpointing import check_checkpoint, fitting_checkpoint
from lossbench.checks import check_run
from lossbench.config import chosen, in_multirun
from lossbench.data.base import InMemoryDataModule
from lossbench.evaluate import tested_data_info
from lossbench.failures import note_finished
from lossbench.interrupt import stopped_by
from lossbench.loggers import finishing_wandb, log_wandb_summary
from lossbench.logs import route_lightning_to_root
from lossbench.overrides import run_overrides
from lossbench.perf import Stopwatch
from lossbench.record import OK, RunRecord, write_record
from lossbench.resume import Resumption, checkpoint_epoch, checkpoint_val
from lossbench.run_dir import RunDir
from lossbench.spawned import epochs_trained

log = logging.getLogger("lossbench")

# Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (a CUDA check that leaves CUDA uninitialised, so
# forked processes can still use it). Where no GPU is visible, every torch.cuda.is_available() then tries
# to load NVML again (~70 µs; torch's optimizers ask twice per step): with no GPU there is nothing to
# protect, so use torch's own check.
if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"

route_lightning_to_root()  # each Lightning message once, through Hydra's handlers

# noise from dependencies that says nothing about the user's run
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# testing a checkpoint (lossbench-eval) needs none of the callbacks that trained it
warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks used to create")
# lossbench logs per epoch: a small table's few batches per epoch miss nothing of its curves
warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the")
# trainer.overfit_batches: lossbench's loaders take the same first batches in order themselves (their
# samplers are not Lightning's SequentialSampler, so Lightning says it turns a shuffling off that is off)
warnings.filterwarnings("ignore", message=r"You requested to overfit but enabled \w+ dataloader shuffling")


def run(
    cfg: DictConfig,
    extra_callbacks: list[Any] | None = None,
    *,
    fit: bool = True,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Train, validate and test one configuration; write its record (``metrics.json``); return the record
    as its JSON object (:meth:`lossbench.record.RunRecord.to_dict`).

    ``extra_callbacks`` join the configured ones (``lossbench tune`` passes its pruning callback). With
    ``test=false`` the test split is never read (tuning trials): no test metrics, no predictions. With
    ``fit=False`` nothing is trained: ``cfg.ckpt_path`` is tested (``lossbench-eval``). ``overrides``: what
    the record names as the run's overrides (by default Hydra's, those of the command line).
    """
    start, watch = time.perf_counter(), Stopwatch()  # phase wall times, in metrics.json as `timings`
    check_run(cfg)
    run_dir, overrides = RunDir(cfg.paths.output_dir), run_overrides() if overrides is None else overrides
    resumption = Resumption.prepare(cfg, run_dir, overrides, sweep_job=in_multirun(), fit=fit)
    if resumption.finished is not None:  # resume=true on a finished run changes nothing
        return resumption.finished
    if resumption.checkpoint is not None and fit:  # its checkpoints folder holds the epochs it continues
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    with watch("data"):  # tested: in the units and encoding of the run that wrote the checkpoint
        dm = build_data(cfg, None if fit else tested_data_info(resumption.checkpoint))
    with watch("model"):
        cfg, loss, module = build_module(cfg, dm)
    if resumption.checkpoint is not None:  # its classes, data and model are this run's, or one line says
        check_checkpoint(cfg, resumption.checkpoint, module, dm, fit)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    with finishing_wandb():  # finished, or failed with the error that ended the run
        with watch("trainer"):
            trainer = build_trainer(
                cfg, resolved, overrides, resumption.wandb_id, fit=fit, extra_callbacks=extra_callbacks
            )
        if resumption.checkpoint is not None:  # its weights load in the Trainer's dtype (64-true: float64)
            module = trainer.precision_plugin.convert_module(module)
        if fit:
            with watch("fit"), stopped_by(trainer, run_dir):
                trainer.fit(module, datamodule=dm, ckpt_path=resumption.checkpoint, weights_only=True)
            say_why_fit_stopped(trainer)
        tested = best_checkpoint(trainer) if fit else fitting_checkpoint(str(resumption.checkpoint), module)
        val = last_val(trainer, resumption.checkpoint if fit else None)  # before testing replaces them
        test: dict[str, float] = {}
        if cfg.get("test", True):
            module.predictions_path = predictions_path(trainer, dm, run_dir)
            with watch("test"), stopped_by(trainer, run_dir):
                calibrate(trainer, module, dm, tested)
                test = metrics_on_test_split(trainer, module, dm, tested)
        record = RunRecord(OK, **record_fields(cfg, loss, dm, resolved, overrides), test=test)
        if fit:
            record = fit_fields(record, trainer, cfg, val, tested, time.perf_counter() - start, watch.times)
        else:
            record.evaluated_checkpoint = str(Path(tested).resolve())
        if trainer.is_global_zero:
            write_run_files(record, run_dir)
        log_wandb_summary(record.to_dict())  # best val + test metrics in the W&B run summary
        return record.to_dict()


def metrics_on_test_split(trainer: Any, module: Any, dm: Any, tested: str) -> dict[str, float]:
    """Test the ``tested`` checkpoint ("" or None: the module's weights as they are); its test metrics.
    Lightning prints its results table, unless this is one of many jobs."""
    verbose = not in_multirun() and trainer.progress_bar_callback is not None  # or has no progress bar
    results = trainer.test(
        module, datamodule=dm, ckpt_path=tested or None, verbose=verbose, weights_only=True
    )
    return metric_values(results[0] if results else {}, "test/")


def calibrate(trainer: Any, module: Any, dm: Any, tested: str) -> None:
    """Fit the module's recalibration (:mod:`lossbench.calibration`) on the tested checkpoint's validation
    outputs: a validation pass that logs nothing. The module in this process holds what it fitted, at full
    precision; a strategy that fits in spawned processes returns the fitted scalars as callback metrics
    (logged values, rounded to float32), which this process then loads."""
    if not module.recalibration.applies:
        return
    module.calibrating = True
    module.recalibration.clear()
    try:
        trainer.validate(module, datamodule=dm, ckpt_path=tested or None, verbose=False, weights_only=True)
    finally:
        module.calibrating = False
    if not module.recalibration.fitted():  # fitted in spawned processes
        fitted = metric_values(trainer.callback_metrics, "calibration/")
        module.recalibration.load({k.split("/", 1)[1]: v for k, v in fitted.items()})


def last_val(trainer: Any, continued_from: Path | None) -> dict[str, float]:
    """The validation metrics of the last epoch trained, or those stored in the checkpoint the fit
    ``continued_from`` when it had no epoch left to train."""
    val = metric_values(trainer.callback_metrics, "val/")
    return checkpoint_val(continued_from) if not val and continued_from is not None else val


def metric_values(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The ``prefix`` metrics (``val/``, ``test/``) of Lightning's results as floats, sorted by name."""
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefix)}


def record_fields(
    cfg: DictConfig, loss: Any, dm: Any, resolved: dict[str, Any], overrides: list[str]
) -> dict[str, Any]:
    """The :class:`RunRecord` fields that say what was run: loss, data, model, seeds, overrides, config."""
    return {
        "loss": str(cfg.get("loss_name") or chosen("loss", type(loss).__name__)),
        "data": chosen("data"),
        "model": chosen("model"),
        "seed": cfg.seed,
        "data_seed": cfg.data_seed,
        "overrides": overrides,
        "data_info": data_info_of(dm),
        "config": {k: v for k, v in resolved.items() if k != "hydra"},
    }


def say_why_fit_stopped(trainer: Any) -> None:
    """One line when early stopping ended the fit: when, and on which metric's lack of progress."""
    stopper = trainer.early_stopping_callback
    if stopper is None or not stopper.stopped_epoch or trainer.current_epoch >= (trainer.max_epochs or 0):
        return
    if not trainer.is_global_zero:
        return
    best = stopper.best_score.item() if stopper.best_score is not None else float("nan")
    log.info(
        "early stopping ended training after epoch %d of %s: %s did not improve by more than %g for %d "
        "validation epochs (best %.4f); callbacks.early_stopping.patience sets how many",
        stopper.stopped_epoch + 1,  # Lightning's epoch index, counted from 0
        trainer.max_epochs,
        stopper.monitor,
        abs(stopper.min_delta),
        stopper.wait_count,
        best,
    )


def best_checkpoint(trainer: Any) -> str:
    """The best checkpoint's path by the monitored metric ("" without a checkpoint callback)."""
    checkpoint = trainer.checkpoint_callback
    return checkpoint.best_model_path if checkpoint is not None else ""


def fit_fields(
    record: RunRecord,
    trainer: Any,
    cfg: DictConfig,
    val: dict[str, float],
    best_path: str,
    wall_s: float,
    timings: dict[str, float],
) -> RunRecord:
    """``record`` with what fitting adds: the monitored metric's best value, the last validation metrics,
    the epochs, the wall time and the phases' times. Of a fit in spawned processes
    (:mod:`lossbench.spawned`) the best value is read from the best checkpoint."""
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_score if checkpoint is not None else None
    if best is None and best_path:  # fitted in spawned processes
        best = checkpoint_val(Path(best_path)).get(cfg.monitor.metric)
    record.val = val
    record.monitor = {
        "metric": cfg.monitor.metric,
        "mode": cfg.monitor.mode,
        "best": float(best) if best is not None else record.val.get(cfg.monitor.metric),
        "best_checkpoint": best_path,
    }
    record.epochs, record.wall_s, record.timings = epochs_trained(trainer), round(wall_s, 3), timings
    warn_if_early_best(record)
    return record


#: a validation split smaller than this picks its best epoch on noise more often than not
SMALL_VAL = 100


def warn_if_early_best(record: RunRecord) -> None:
    """Warn when a small validation split picked a best epoch in the first tenth of training."""
    best_path, n_val = (record.monitor or {}).get("best_checkpoint"), (record.data_info or {}).get("n_val")
    if not best_path or not Path(best_path).is_file() or n_val is None or n_val >= SMALL_VAL:
        return
    best_epoch, epochs = checkpoint_epoch(Path(best_path)), record.epochs or 0
    if epochs >= 10 and best_epoch < 0.1 * epochs:
        metric = record.monitor["metric"]
        steadier = (
            ", or monitor.metric=val/nll," if "val/nll" in (record.val or {}) and metric != "val/nll" else ""
        )
        log.warning(
            "%s seed %s (%s): the best %s was at epoch %d of %d, picked on %d validation samples: that "
            "choice may be noise (a larger data.val_fraction%s picks more steadily)",
            record.loss,
            record.seed,
            RunDir.of_checkpoint(Path(best_path)).path,  # which run: a tuning trial's, a final run's
            metric,
            best_epoch,
            epochs,
            n_val,
            steadier,
        )


def predictions_path(trainer: Any, dm: Any, run_dir: RunDir) -> Path | None:
    """Where the test epoch writes ``predictions.npz``: the run dir, unless a streamed test split is
    sharded over DDP processes in an order that cannot be put back together."""
    if trainer.world_size == 1 or isinstance(dm, InMemoryDataModule):
        return run_dir.predictions
    log.info("no %s under DDP for a streamed data set: test it on one process", run_dir.predictions.name)
    return None


def write_run_files(record: RunRecord, run_dir: RunDir) -> None:
    """``metrics.json``, and ``labels.json`` (class index -> the data's own label) where classes are named."""
    write_record(record, run_dir.path)
    note_finished(run_dir.path)  # a stop from here on keeps this record
    if (record.data_info or {}).get("labels") is not None:
        labels = dict(enumerate(record.data_info["labels"]))
        run_dir.labels.write_text(json.dumps(labels, indent=2))
