"""Training entry point: config → instantiate → DataModule/Module → Trainer → loggers.

``python train.py loss=focal`` and the ``lossbench-train`` console script both call :func:`main`.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from lossbench.config import CONFIG_DIR, chosen, losses_for_task
from lossbench.data.base import InMemoryDataModule
from lossbench.errors import LossbenchError, LossTaskMismatchError
from lossbench.loggers import build_loggers, finish_wandb, log_wandb_summary
from lossbench.losses.base import BenchLoss
from lossbench.metrics import DEFAULT_MONITOR
from lossbench.module import LossBenchModule
from lossbench.predictions import FILENAME as PREDICTIONS_FILE
from lossbench.predictions import save_test_predictions
from lossbench.sweep import check_ddp_in_multirun, in_multirun, one_line, record_failure, root_error

log = logging.getLogger("lossbench")

# noise from dependencies that says nothing about the user's run
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
warnings.filterwarnings("ignore", message=r".*anonymous setting has no effect.*")


def build_loss(cfg: DictConfig, dm: InMemoryDataModule) -> BenchLoss:
    """Instantiate the loss and check it can serve the data set's task (before any training)."""
    loss_cls = get_class(cfg.loss._target_)
    needs_counts = getattr(loss_cls, "needs_class_counts", False)
    extra = {"class_counts": dm.class_counts.tolist()} if needs_counts else {}
    loss: BenchLoss = instantiate(cfg.loss, **extra)
    try:
        loss.check_task(dm.task, dm.num_classes)
    except LossTaskMismatchError as err:
        valid = ", ".join(losses_for_task(dm.task))
        raise LossTaskMismatchError(
            f"loss={chosen('loss', type(loss).__name__)} cannot train on data={chosen('data')}: {err}. "
            f"Choose one of loss={valid}"
        ) from None
    return loss


def _floats(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefix)}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train, validate and test one configuration; write ``metrics.json``; return its contents."""
    start = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    dm: InMemoryDataModule = instantiate(cfg.data)
    dm.setup("fit")
    loss = build_loss(cfg, dm)
    model = instantiate(
        cfg.model,
        input_shape=dm.input_shape,
        num_outputs=loss.num_outputs(dm.task, dm.num_classes, dm.num_targets),
    )
    module = LossBenchModule(
        model=model,
        loss=loss,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
        scheduler_interval=cfg.optim.get("scheduler_interval", "epoch"),
        task=dm.task,
        num_classes=dm.num_classes,
    )
    if cfg.monitor.metric is None:
        cfg.monitor.metric, cfg.monitor.mode = DEFAULT_MONITOR[dm.task]

    resolved = OmegaConf.to_container(cfg, resolve=True)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    try:
        loggers = build_loggers(cfg.get("logger"), config=resolved)
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.get("ckpt_path"))
        val = _floats(trainer.callback_metrics, "val/")
        checkpoint = trainer.checkpoint_callback
        best_path = checkpoint.best_model_path if checkpoint is not None else ""
        test_results = trainer.test(module, datamodule=dm, ckpt_path=best_path or None, verbose=True)
        test = _floats(test_results[0] if test_results else {}, "test/")
        best = checkpoint.best_model_score if checkpoint is not None else None
        summary: dict[str, Any] = {
            "status": "ok",
            "loss": chosen("loss", type(loss).__name__),
            "data": chosen("data"),
            "model": chosen("model"),
            "seed": cfg.seed,
            "data_seed": cfg.data_seed,
            "monitor": {
                "metric": cfg.monitor.metric,
                "mode": cfg.monitor.mode,
                "best": float(best) if best is not None else val.get(cfg.monitor.metric),
                "best_checkpoint": best_path,
            },
            "val": val,
            "test": test,
            "epochs": trainer.current_epoch,
            "data_info": dm.describe(),
            "wall_s": round(time.perf_counter() - start, 3),
            "config": {k: v for k, v in resolved.items() if k != "hydra"},
        }
        if trainer.is_global_zero:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
            # issue 5 (reports): test-set probabilities of the tested checkpoint, for reliability diagrams
            save_test_predictions(module, dm, output_dir / PREDICTIONS_FILE, best_path or None)
        log_wandb_summary(summary)  # issue 5: best val + test metrics in the W&B run summary
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
        summary = run(cfg)
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
