"""Training keeps Lightning's documented semantics: one Lightning batch is one batch and (without
accumulation) one optimizer step; clipping, accumulation, schedules and limits are the Trainer's own."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from lossbench.build import build_module
from lossbench.run import run
from tests.conftest import ROOT, run_cli

PROBE = "+callbacks.probe._target_=tests.lightning_probe.StepProbe"
BATCHES = 17  # digits: 1,077 training samples in batches of 64


def probe(run_dir: Path) -> dict:
    return json.loads((run_dir / "probe.json").read_text())


@pytest.mark.slow
def test_a_command_line_callback_sees_one_batch_per_optimizer_step(tmp_path):
    """The bar: on a default digits run a user's ``on_train_batch_end`` runs ``global_step`` times and
    ``estimated_stepping_batches`` equals the optimizer steps taken (through the real CLI)."""
    tests = str(ROOT)
    run_cli(PROBE, "trainer.max_epochs=3", "logger=csv", f"hydra.run.dir={tmp_path}", cwd=tmp_path,
            env={"PYTHONPATH": tests})  # fmt: skip
    seen = probe(tmp_path)
    assert seen["global_step"] == 3 * BATCHES
    assert seen["train_batch_ends"] == seen["global_step"] == seen["estimated_stepping_batches"]
    assert seen["num_training_batches"] == BATCHES and seen["batch_sizes"] == [53, 64]


def test_accumulation_counts_steps_as_lightning_does(make_cfg, tmp_path):
    run(make_cfg(PROBE, "trainer.max_epochs=2", "trainer.accumulate_grad_batches=4", "logger=csv"))
    seen = probe(tmp_path)
    assert seen["train_batch_ends"] == 2 * BATCHES  # the hook runs per batch
    assert seen["global_step"] == seen["estimated_stepping_batches"] == 2 * 5  # ceil(17 / 4) per epoch


def test_learning_rate_monitor_at_step_interval_writes_one_row_per_step(make_cfg, tmp_path):
    run(
        make_cfg(
            "+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor",
            "+callbacks.lr.logging_interval=step",
            "trainer.log_every_n_steps=1",
            "trainer.max_epochs=2",
            "logger=csv",
        )
    )
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("lr-AdamW")]
    assert [int(r["step"]) for r in rows] == list(range(2 * BATCHES))


def test_val_check_interval_validates_twice_per_epoch(make_cfg, tmp_path):
    run(make_cfg(PROBE, "trainer.max_epochs=2", "+trainer.val_check_interval=0.5", "logger=csv"))
    seen = probe(tmp_path)
    assert seen["validations"] == 4 and seen["global_step"] == 2 * BATCHES


def test_one_cycle_sized_from_estimated_stepping_batches_ends_at_its_final_rate(make_cfg, tmp_path):
    summary = run(make_cfg(PROBE, "optim=adamw_onecycle", "trainer.max_epochs=2", "logger=csv"))
    seen = probe(tmp_path)
    schedule = summary["config"]["optim"]["scheduler"]
    # OneCycleLR's defaults: initial lr = max_lr / 25, final lr = initial lr / 1e4
    final = schedule["max_lr"] / 25 / 1e4
    lrs = seen["step_lrs"]
    assert len(lrs) == seen["global_step"] == seen["estimated_stepping_batches"] == 2 * BATCHES
    assert max(lrs) == pytest.approx(schedule["max_lr"], rel=0.05)
    assert lrs[-1] == pytest.approx(final, rel=1e-6)  # the last step runs at the schedule's final rate


@pytest.mark.parametrize(
    "stop", ["+trainer.max_steps=20", "+callbacks.stop._target_=tests.lightning_probe.StopAtStep"]
)
def test_an_epoch_cut_short_logs_the_training_loss_of_the_batches_it_trained(make_cfg, tmp_path, stop):
    """An epoch that ``max_steps`` or a callback's ``trainer.should_stop`` ends after 3 of its 17 batches
    logs its training loss, the mean of those 3 batches, as Lightning logs an epoch value; callbacks see it
    at the epoch's end."""
    run(make_cfg(PROBE, stop, "trainer.max_epochs=3", "logger=csv", "test=false"))
    seen = probe(tmp_path)
    assert seen["global_step"] == BATCHES + 3
    with open(tmp_path / "csv" / "metrics.csv") as f:
        logged = {int(r["epoch"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}
    for epoch in (0, 1):
        batches = [(loss, n) for e, loss, n in seen["batch_losses"] if e == epoch]
        mean = sum(loss * n for loss, n in batches) / sum(n for _, n in batches)
        assert logged[epoch] == pytest.approx(mean, rel=1e-5), epoch
        assert seen["epoch_train_loss"][epoch] == pytest.approx(mean, rel=1e-5), epoch
    assert len(seen["epoch_train_loss"]) == 2


def test_an_epoch_early_stopping_ends_in_a_mid_epoch_validation_logs_its_training_loss(make_cfg, tmp_path):
    """Validation after 8 and 16 of 17 batches; early stopping (no gain of 1 counts) stops at the second,
    after its batch's hooks ran: the epoch's end logs the mean training loss of its 16 batches."""
    stop = (
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=0",
        "callbacks.early_stopping.min_delta=1",
    )
    run(
        make_cfg(
            PROBE,
            *stop,
            "+trainer.val_check_interval=0.5",
            "trainer.max_epochs=3",
            "logger=csv",
            "test=false",
        )
    )
    seen = probe(tmp_path)
    assert seen["global_step"] == 16
    with open(tmp_path / "csv" / "metrics.csv") as f:
        logged = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    batches = [(loss, n) for _, loss, n in seen["batch_losses"]]
    assert logged == pytest.approx(
        [sum(loss * n for loss, n in batches) / sum(n for _, n in batches)], rel=1e-5
    )


def _fit(make_cfg, *overrides: str) -> tuple[L.Trainer, dict[str, torch.Tensor]]:
    cfg = make_cfg("trainer.max_epochs=2", *overrides)
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    _, _, module = build_module(cfg, dm)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=dm)
    return trainer, {k: v.detach().clone() for k, v in module.model.state_dict().items()}


@pytest.mark.slow
def test_limits_and_max_steps_count_optimizer_steps(make_cfg):
    assert _fit(make_cfg, "+trainer.max_steps=7")[0].global_step == 7
    assert _fit(make_cfg, "+trainer.limit_train_batches=3")[0].global_step == 6
    assert _fit(make_cfg, "+trainer.limit_train_batches=0.5")[0].global_step == 2 * 8
    assert _fit(make_cfg, "+trainer.fast_dev_run=true")[0].global_step == 1


@pytest.mark.slow
def test_clipping_and_accumulation_change_training(make_cfg):
    """``trainer.gradient_clip_val`` / ``accumulate_grad_batches`` are plain overrides that take effect."""
    _, plain = _fit(make_cfg)
    for override in ("trainer.gradient_clip_val=0.01", "trainer.gradient_clip_algorithm=value",
                     "trainer.accumulate_grad_batches=3"):  # fmt: skip
        extra = ("trainer.gradient_clip_val=0.001",) if "algorithm" in override else ()
        _, changed = _fit(make_cfg, override, *extra)
        assert any(not torch.equal(plain[k], changed[k]) for k in plain), override


@pytest.mark.slow
def test_resume_continues_the_epoch_schedule_exactly(make_cfg, tmp_path):
    """A run resumed from ``last.ckpt`` ends where the uninterrupted run ends."""
    common = ("optim=sgd", "optim.scheduler.T_max=4", "logger=csv")
    straight = run(make_cfg(*common, "trainer.max_epochs=4", output_dir=tmp_path / "straight"))
    run(make_cfg(*common, "trainer.max_epochs=2", output_dir=tmp_path / "resumed"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed = run(
        make_cfg(*common, "trainer.max_epochs=4", f"ckpt_path={last}", output_dir=tmp_path / "resumed")
    )
    assert resumed["val"] == straight["val"] and resumed["test"] == straight["test"]


@pytest.mark.slow
def test_in_float64_a_resumed_run_ends_with_the_uninterrupted_runs_weights_to_the_last_bit(
    make_cfg, tmp_path
):
    """Its checkpoint's weights load into the model in float64: loaded into the float32 model the Trainer
    converts only later, they were rounded (6e-9 apart after two more epochs here)."""
    common = ("trainer.precision=64-true", "logger=csv")
    run(make_cfg(*common, "trainer.max_epochs=4", output_dir=tmp_path / "straight"))
    run(make_cfg(*common, "trainer.max_epochs=2", output_dir=tmp_path / "resumed"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    run(make_cfg(*common, "trainer.max_epochs=4", f"ckpt_path={last}", output_dir=tmp_path / "resumed"))
    straight, resumed = (
        torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for name in ("straight", "resumed")
    )
    assert all(resumed[k].dtype == torch.float64 and torch.equal(resumed[k], straight[k]) for k in straight)


def test_a_run_continued_at_its_last_epoch_records_that_epochs_validation_metrics(make_cfg, tmp_path):
    """Stopped after its last checkpoint but before its record was written, a run continued trains no
    epoch: its ``val`` comes from the checkpoint, as the uninterrupted run recorded it."""
    common = ("logger=csv", "trainer.max_epochs=2")
    straight = run(make_cfg(*common, output_dir=tmp_path / "straight"))
    last = tmp_path / "straight" / "checkpoints" / "last.ckpt"
    again = run(make_cfg(*common, f"ckpt_path={last}", output_dir=tmp_path / "straight"))
    assert again["val"] and again["val"] == straight["val"] and again["test"] == straight["test"]


@pytest.mark.slow
def test_reduce_on_plateau_follows_the_monitored_metric(make_cfg):
    summary = run(
        make_cfg(
            "optim=sgd",
            "optim.scheduler._target_=torch.optim.lr_scheduler.ReduceLROnPlateau",
            "~optim.scheduler.T_max",
            "+optim.scheduler.patience=0",
            "+optim.scheduler.factor=0.5",
            "monitor.metric=val/loss",
            "trainer.max_epochs=6",
            "logger=csv",
        )
    )
    assert summary["status"] == "ok" and summary["monitor"]["metric"] == "val/loss"


def test_early_stopping_says_when_and_why_it_stopped(make_cfg, caplog):
    cfg = make_cfg(
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=0.5",  # no epoch improves by half: it stops after the second
        "trainer.max_epochs=20",
        "logger=none",
    )
    with caplog.at_level("INFO", logger="lossbench"):
        record = run(cfg)
    said = [r.getMessage() for r in caplog.records if "early stopping ended training" in r.getMessage()]
    assert record["epochs"] == 2 and len(said) == 1, "epochs counted as the record counts them"
    assert (
        "after epoch 2 of 20" in said[0]
        and "did not improve by more than 0.5 for 1 validation epochs" in said[0]
    )
