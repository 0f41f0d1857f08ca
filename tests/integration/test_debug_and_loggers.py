"""The conveniences a Lightning-Hydra user reaches for: debug=, more callbacks, TensorBoard and MLflow."""

from __future__ import annotations

import csv

import pytest
import yaml

from lossbench.run import run
from tests.conftest import run_cli


def _train_losses(run_dir) -> list[float]:
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


@pytest.mark.parametrize("option", ["default", "fdr", "limit", "profiler"])
@pytest.mark.slow
def test_every_debug_option_trains_and_tests(make_cfg, option):
    summary = run(make_cfg(f"debug={option}"))
    assert summary["status"] == "ok" and summary["test"]["test/acc"] > 0
    assert summary["config"]["task_name"] == "debug" and not summary["config"]["logger"]


def test_debug_default_logs_lossbench_and_lightning_at_debug(tmp_path):
    """Its config sets the root logger to DEBUG; Lightning sets its own to INFO when imported, which
    hid every Lightning DEBUG line."""
    run_cli("debug=default", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    log = next(tmp_path.glob("*.log")).read_text()
    assert "[lossbench][DEBUG] - data=digits:" in log and "[lossbench][DEBUG] - Trainer: precision" in log
    assert "[lightning.pytorch.trainer.trainer][DEBUG]" in log


@pytest.mark.slow
def test_debug_overfit_drives_the_train_loss_down(make_cfg, tmp_path):
    summary = run(make_cfg("debug=overfit", "logger=csv"))
    losses = _train_losses(tmp_path)
    assert summary["epochs"] == 20 and len(losses) == 20
    assert losses[-1] < 0.25 * losses[0], "3 batches, 20 epochs: the model memorises them"


@pytest.mark.slow
def test_early_stopping_stops_on_the_monitored_metric(make_cfg, tmp_path):
    cfg = make_cfg(
        "callbacks=early_stopping", "callbacks.early_stopping.patience=1", "trainer.max_epochs=200"
    )
    summary = run(cfg)
    assert summary["epochs"] < 199, "stopped early"
    assert summary["config"]["callbacks"]["early_stopping"]["monitor"] == "val/acc"
    assert cfg.monitor.metric is None, "the caller's config is left as it was"


@pytest.mark.slow
def test_lr_monitor_logs_the_learning_rate(make_cfg, tmp_path):
    run(make_cfg("callbacks=lr_monitor", "logger=csv", "trainer.max_epochs=2", "trainer.log_every_n_steps=1"))
    with (tmp_path / "csv" / "metrics.csv").open() as f:
        rates = [r["lr-AdamW"] for r in csv.DictReader(f) if r.get("lr-AdamW")]
    assert len(rates) == 2 * 17, "one row per optimizer step (2 epochs of 17 batches)"


@pytest.mark.slow
def test_tensorboard_logger_writes_the_epoch_metrics(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(make_cfg("logger=[tensorboard,csv]", "trainer.max_epochs=3", "loss=focal"))
    for hparams in (tmp_path / "tensorboard" / "hparams.yaml", tmp_path / "csv" / "hparams.yaml"):
        given = yaml.safe_load(hparams.read_text())  # the run's resolved config, as W&B's
        assert given["loss"]["gamma"] == 2.0 and given["trainer"]["max_epochs"] == 3, hparams
    scalars = set()
    for events in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        scalars |= set(acc.Tags()["scalars"])
    assert {"val/acc", "train/loss", "test/acc"} <= scalars


@pytest.mark.slow
def test_mlflow_logger_records_a_run_with_its_metrics(make_cfg, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run(make_cfg("logger=mlflow", f"logger.mlflow.tracking_uri={uri}", "trainer.max_epochs=2"))
    client = mlflow.MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("lossbench").experiment_id])
    assert {"val/acc", "train/loss", "test/acc"} <= set(found.data.metrics)
    assert found.data.tags["loss"] == "ce"
    assert found.data.params["trainer/max_epochs"] == "2" and found.data.params["seed"] == "0"
