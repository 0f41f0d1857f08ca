"""Training entry point: config → instantiate → DataModule/Module → Trainer → loggers.

``python train.py loss=focal`` and the ``lossbench-train`` console script both call :func:`main`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lossbench.checkpointing import OverridesInCheckpoint
from lossbench.config import CONFIG_DIR, check_required, check_types, chosen, losses_for_task
from lossbench.data.base import InMemoryDataModule
from lossbench.data.prepare import prepare_once
from lossbench.errors import (
    ConfigError,
    LossbenchError,
    LossTaskMismatchError,
    check_choice,
    check_range,
)
from lossbench.interrupt import RunInterrupted, interrupted_message, stopped_by_signal
from lossbench.loggers import build_loggers, finish_wandb, init_wandb_run, log_wandb_summary
from lossbench.losses.base import BenchLoss
from lossbench.metrics import resolve_monitor
from lossbench.models import build_model
from lossbench.module import LossBenchModule
from lossbench.perf import Stopwatch
from lossbench.predictions import FILENAME as PREDICTIONS_FILE
from lossbench.predictions import save_test_predictions
from lossbench.resume import (
    LAST_CHECKPOINT,
    checkpoint_epoch,
    drop_csv_rows_after_epoch,
    finished_run,
    requeued,
    resume_checkpoint,
    wandb_run_id,
)
from lossbench.sweep import (
    check_ddp_in_multirun,
    in_multirun,
    one_line,
    print_sweep_summary,
    record_failure,
    root_error,
)
from lossbench.task import BenchDataModule, check_data_contract

log = logging.getLogger("lossbench")

#: the class index -> label map of a data set with named classes, in the run dir
LABELS_FILE = "labels.json"

# Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (a CUDA check that leaves CUDA uninitialised, so
# forked processes can still use it). Where no GPU is visible, every torch.cuda.is_available() then tries
# to load NVML again (~70 µs; torch's optimizers ask twice per step): with no GPU there is nothing to
# protect, so use torch's own check.
if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"

# noise from dependencies that says nothing about the user's run
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
warnings.filterwarnings("ignore", message=r".*anonymous setting has no effect.*")


def build(group: str, cfg: DictConfig, **kwargs: Any) -> Any:
    """``instantiate(cfg)``, re-raising our own errors unwrapped from Hydra's and naming the config key.

    ``FocalLoss(gamma=-1)`` raises "gamma=-1 is out of range..."; built from ``cfg.loss`` it becomes
    "loss.gamma=-1 is out of range...", the override that fixes it.
    """
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if str(err).startswith("Error locating target"):
            raise ConfigError(
                f"{group}._target_={cfg.get('_target_')} cannot be imported ({one_line(cause)}): check the "
                "spelling, and that its package is installed or on PYTHONPATH"
            ) from None
        if not isinstance(cause, LossbenchError):
            raise
        message = str(cause)
        if re.match(r"^[A-Za-z_]\w*=", message):
            message = f"{group}.{message}"
        raise type(cause)(message) from None


def check_accelerator(cfg: DictConfig) -> None:
    """Fail before any work when the trainer asks for a GPU that is not there."""
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer={chosen('trainer')} needs a CUDA GPU (trainer.accelerator={accelerator}) but none is "
            "visible: use trainer=cpu, or trainer=ddp_cpu for the DDP code path on CPU"
        )


def check_trainer_options(cfg: DictConfig) -> None:
    """The Trainer's optimization options, checked before any work with errors naming the override."""
    trainer = cfg.trainer
    check_range("trainer.gradient_clip_val", trainer.get("gradient_clip_val") or 0.0, 0.0)
    if trainer.get("gradient_clip_algorithm") is not None:
        check_choice("trainer.gradient_clip_algorithm", trainer.gradient_clip_algorithm, ("norm", "value"))
    check_range("trainer.accumulate_grad_batches", trainer.get("accumulate_grad_batches", 1), 1)
    if trainer.get("max_epochs") is not None and (trainer.get("max_steps") or -1) == -1:
        check_range("trainer.max_epochs", trainer.max_epochs, 1)  # 0 would "finish" an untrained model
    lr = OmegaConf.select(cfg, "optim.optimizer.lr", default=None)
    if lr is not None:
        check_range("optim.optimizer.lr", lr, 0.0, low_inclusive=False)
    for key in ("seed", "data_seed"):
        check_range(key, cfg.get(key, 0), 0, 2**32 - 1)  # the range torch's and NumPy's seeding accept


def build_loss(cfg: DictConfig, dm: BenchDataModule) -> BenchLoss:
    """Instantiate the loss and check it can serve the data set's task (before any training)."""
    loss_cls = get_class(cfg.loss._target_)
    counts = dm.class_counts if getattr(loss_cls, "needs_class_counts", False) else None
    extra = {"class_counts": counts.tolist()} if counts is not None else {}  # None: a regression task
    loss: BenchLoss = build("loss", cfg.loss, **extra)
    if loss.reduction == "none":
        raise ConfigError(
            "loss.reduction='none' gives one loss per sample, which cannot be minimised as it is: "
            "train with loss.reduction=mean (the default) or sum"
        )
    try:
        loss.check_task(dm.task, dm.num_classes)
    except LossTaskMismatchError as err:
        valid = ", ".join(losses_for_task(dm.task))
        raise LossTaskMismatchError(
            f"loss={chosen('loss', type(loss).__name__)} cannot train on data={chosen('data')}: {err}. "
            f"Choose one of loss={valid}"
        ) from None
    return loss


def build_data(cfg: DictConfig) -> BenchDataModule:
    """Instantiate ``cfg.data``, fetch its files (``prepare_data``, once per node) and set it up for fitting.

    ``prepare_data`` runs here because the model's shape comes from the data (see
    :mod:`lossbench.data.prepare`); Lightning calls it again in ``fit`` (a no-op once the files are there).
    """
    try:
        dm = build("data", cfg.data)
    except InstantiationException as err:
        cause = err.__cause__
        about_arguments = isinstance(cause, TypeError) and re.search(
            r"unexpected keyword argument|missing \d+ required", str(cause)
        )
        if not about_arguments:
            raise
        raise ConfigError(
            f"data._target_={cfg.data.get('_target_')} could not be built with the keys of data="
            f"{chosen('data')} ({err.__cause__}): start from data=datamodule, which holds only _target_ "
            "(python train.py data=datamodule data._target_=mypkg.MyDataModule +data.<arg>=...)"
        ) from None
    prepare_once(dm)  # on local rank 0; the other local ranks wait for it when all start at once
    dm.setup("fit")
    check_data_contract(dm, f"data={chosen('data')}")
    return dm


def describe_data(dm: BenchDataModule) -> dict[str, Any]:
    """The data module's own ``describe()`` for ``metrics.json``, or the contract's fields."""
    if callable(getattr(dm, "describe", None)):
        return dm.describe()
    counts = dm.class_counts
    return {
        "task": str(dm.task),
        "num_classes": dm.num_classes,
        "num_targets": dm.num_targets,
        "input_shape": list(dm.input_shape),
        "class_counts": [int(c) for c in counts] if counts is not None else None,
    }


def _floats(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefix)}


def _build_module(cfg: DictConfig, dm: BenchDataModule) -> tuple[BenchLoss, Any, LossBenchModule]:
    loss = build_loss(cfg, dm)
    try:
        model = build_model(  # instantiate(cfg.model, ...) + the shared model.compile / model.channels_last
            cfg.model,
            input_shape=dm.input_shape,
            num_outputs=loss.num_outputs(dm.task, dm.num_classes, dm.num_targets),
        )
    except InstantiationException as err:
        if isinstance(err.__cause__, LossbenchError):  # the model's own message names the fix
            raise err.__cause__ from None
        raise
    module = LossBenchModule(
        model=model,
        loss=loss,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
        scheduler_interval=cfg.optim.get("scheduler_interval", "epoch"),
        task=dm.task,
        num_classes=dm.num_classes,
        monitor=cfg.monitor.metric,
        nonfinite_every_n_steps=cfg.nonfinite_check.every_n_steps,
    )
    return loss, model, module


def run_overrides() -> list[str]:
    """The running Hydra job's command-line overrides (none outside Hydra)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


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
    """Train, validate and test one configuration; write ``metrics.json``; return its contents.

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
    cfg.monitor.metric, cfg.monitor.mode = resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, dm.task)
    with watch("model"):
        loss, model, module = _build_module(cfg, dm)
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
        val = _floats(trainer.callback_metrics, "val/")
        checkpoint = trainer.checkpoint_callback
        best_path = checkpoint.best_model_path if checkpoint is not None else ""
        testing = bool(cfg.get("test", True))
        with watch("test"), stopped_by(trainer, output_dir):
            test_results = (
                trainer.test(
                    module, datamodule=dm, ckpt_path=best_path or None, verbose=True, weights_only=True
                )
                if testing
                else []
            )
        test = _floats(test_results[0] if test_results else {}, "test/")
        best = checkpoint.best_model_score if checkpoint is not None else None
        summary: dict[str, Any] = {
            "status": "ok",
            "loss": chosen("loss", type(loss).__name__),
            "data": chosen("data"),
            "model": chosen("model"),
            "seed": cfg.seed,
            "data_seed": cfg.data_seed,
            "overrides": overrides,
            "monitor": {
                "metric": cfg.monitor.metric,
                "mode": cfg.monitor.mode,
                "best": float(best) if best is not None else val.get(cfg.monitor.metric),
                "best_checkpoint": best_path,
            },
            "val": val,
            "test": test,
            "epochs": trainer.current_epoch,
            "data_info": describe_data(dm),
            "wall_s": round(time.perf_counter() - start, 3),
            "timings": watch.times,
            "config": {k: v for k, v in resolved.items() if k != "hydra"},
        }
        if trainer.is_global_zero:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
            if summary["data_info"].get("labels") is not None:  # class index -> the data's own label
                labels = dict(enumerate(summary["data_info"]["labels"]))
                (output_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2))
            # test-set probabilities of the tested checkpoint, for the report's reliability diagrams
            # one process: trainer.test left the tested checkpoint's weights in the module
            tested = best_path if trainer.world_size > 1 and best_path else None
            if testing and (trainer.world_size == 1 or isinstance(dm, InMemoryDataModule)):
                save_test_predictions(module, dm, output_dir / PREDICTIONS_FILE, tested)
            elif testing:  # a streamed test split is sharded over the processes
                log.info("no %s under DDP for a streamed data set: test it on one process", PREDICTIONS_FILE)
        log_wandb_summary(summary)  # best val + test metrics in the W&B run summary
        return summary
    finally:
        finish_wandb()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: returns the best monitored validation metric, so sweepers can optimise it.

    In a multirun a failing job is recorded in its ``metrics.json`` (``status: failed``) and returns NaN, so
    the other jobs still run (Optuna marks the trial failed); the sweep's exit status is set at its end by
    :class:`lossbench.sweep.SweepSummary`.
    """
    multirun = in_multirun()
    try:
        if multirun:
            check_ddp_in_multirun(cfg.get("trainer"))
            if cfg.get("resume") or requeued():
                done = finished_run(Path(cfg.paths.output_dir), run_overrides())
                if done is not None:
                    log.info("job %s had finished: its metrics.json is kept", HydraConfig.get().job.num)
                    return done["monitor"]["best"]
        summary = run(cfg)
    except RunInterrupted as err:
        log.error("%s", err)
        if multirun:  # the sweep stops here: its table, then the signal's exit status
            record_failure(cfg, err, status="interrupted")
            print_sweep_summary(Path(HydraConfig.get().sweep.dir), fail=False)
            log.error("the sweep stopped in job %s; its later jobs did not start", HydraConfig.get().job.num)
        raise SystemExit(err.exit_status) from None
    except Exception as err:
        if not multirun:
            if isinstance(err, LossbenchError):
                log.error("%s: %s", type(err).__name__, err)
                raise SystemExit(2) from None
            raise
        if isinstance(root_error(err), LossbenchError):
            log.error("job failed: %s", one_line(root_error(err)))
        else:
            log.exception("job failed: %s: %s", type(err).__name__, err)
        record_failure(cfg, err)
        return float("nan")
    if rank_zero_only.rank != 0:
        return summary["monitor"]["best"]
    log.info(
        "run dir %s | best %s=%.4f | %s",
        cfg.paths.output_dir,
        summary["monitor"]["metric"],
        summary["monitor"]["best"],
        " ".join(f"{k}={v:.4f}" for k, v in summary["test"].items()),
    )
    return summary["monitor"]["best"]


if __name__ == "__main__":
    main()
