"""Real training runs on digits: every loss learns, runs are reproducible, outputs are where promised."""

from __future__ import annotations

import pytest

from lossbench.errors import ConfigError
from lossbench.run import run
from tests.conftest import read_metrics, run_cli

SKELETON_LOSSES = ("ce", "bce", "focal", "mse", "huber")


@pytest.mark.parametrize("loss", SKELETON_LOSSES)
@pytest.mark.slow
def test_each_loss_trains_to_90_percent_on_digits(make_cfg, tmp_path, loss):
    summary = run(make_cfg(f"loss={loss}", "logger=csv"))
    assert summary["test"]["test/acc"] >= 0.90, summary["test"]
    assert set(summary["test"]) >= {f"test/{m}" for m in ("acc", "bal_acc", "f1", "nll", "ece", "loss")}
    written = read_metrics(tmp_path)
    assert written["test"] == summary["test"] and written["loss"] == loss
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert summary["monitor"]["best_checkpoint"].startswith(str(tmp_path / "checkpoints" / "best_epoch_"))
    assert (tmp_path / "csv" / "metrics.csv").is_file()


def test_same_seeds_give_identical_metrics(make_cfg, tmp_path):
    common = ("logger=none", "trainer.max_epochs=3")
    a = run(make_cfg(*common, "seed=1", output_dir=tmp_path / "a"))
    b = run(make_cfg(*common, "seed=1", output_dir=tmp_path / "b"))
    c = run(make_cfg(*common, "seed=2", output_dir=tmp_path / "c"))
    assert a["test"] == b["test"] and a["val"] == b["val"]
    assert a["val"]["val/loss"] != c["val"]["val/loss"], "the training seed must change the run"


@pytest.mark.slow
def test_mismatch_is_one_line_on_the_cli(tmp_path):
    proc = run_cli("loss=focal", "data=diabetes", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "LossTaskMismatchError" in ln]
    assert len(lines) == 1 and "Choose one of loss=" in lines[0]


@pytest.mark.slow
def test_regression_loss_trains_on_diabetes(make_cfg):
    summary = run(make_cfg("loss=huber", "data=diabetes", "logger=none", "trainer.max_epochs=30"))
    assert summary["monitor"]["metric"] == "val/rmse"
    assert summary["test"]["test/r2"] > 0.2, summary["test"]


@pytest.mark.slow
def test_default_cli_run(tmp_path):
    """`python train.py` with the defaults: W&B offline inside the run dir, ≥95% test accuracy."""
    run_cli("hydra.run.dir=run", cwd=tmp_path)
    run_dir = tmp_path / "run"
    metrics = read_metrics(run_dir)
    assert metrics["test"]["test/acc"] >= 0.95, metrics["test"]
    assert metrics["loss"] == "ce" and metrics["data"] == "digits"
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    assert (run_dir / "csv" / "metrics.csv").is_file()


@pytest.mark.slow
def test_digits_as_images_train_a_cnn(make_cfg, tmp_path):
    summary = run(make_cfg("data.as_images=true", "model=cnn", "logger=none", "trainer.max_epochs=5"))
    assert summary["data_info"]["input_shape"] == [1, 8, 8]
    assert summary["test"]["test/acc"] >= 0.85, summary["test"]
    with pytest.raises(ConfigError, match="data.as_images=true"):
        run(make_cfg("model=cnn", "logger=none", output_dir=tmp_path / "flat"))
    with pytest.raises(ConfigError, match="needs an image data set, but wine is tabular"):
        run(make_cfg("data=wine", "+data.as_images=true", "logger=none", output_dir=tmp_path / "wine"))


def test_last_checkpoint_is_the_last_finished_epoch_not_the_best(make_cfg, tmp_path):
    """With monitor.mode=max on val/loss the best epoch is an early one; last.ckpt must still be the last."""
    import torch

    summary = run(
        make_cfg("logger=none", "trainer.max_epochs=5", "monitor.metric=val/loss", "monitor.mode=max")
    )
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 4, "last.ckpt holds the epoch just finished"
    best = torch.load(summary["monitor"]["best_checkpoint"], map_location="cpu", weights_only=False)
    assert (
        best["epoch"] < 4 and sorted(p.name for p in (tmp_path / "checkpoints").iterdir())[-1] == "last.ckpt"
    )
