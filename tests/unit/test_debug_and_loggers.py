"""The conveniences a Lightning-Hydra user reaches for: debug=, more callbacks, TensorBoard and MLflow."""

from __future__ import annotations

import logging

import pytest

from lossbench.errors import ConfigError
from lossbench.loggers import build_loggers


def test_a_missing_optional_logger_names_its_extra(make_cfg, monkeypatch):
    cfg = make_cfg("logger=tensorboard")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(
        ConfigError, match=r"logger=tensorboard needs the tensorboard package.*lossbench\[tensorboard\]"
    ):
        build_loggers(cfg.logger, config={})


def test_trainer_enable_progress_bar_false_trains_without_a_bar(make_cfg):
    """The configured bar is left out (Lightning refuses a bar callback with the option off); without the
    configured bar Lightning adds its own, as it documents."""
    from lossbench.build import build_trainer

    def trainer(*overrides: str):
        cfg = make_cfg("logger=none", "monitor.metric=val/acc", "monitor.mode=max", *overrides)
        return build_trainer(cfg, {}, [], None)

    assert trainer("trainer.enable_progress_bar=false").progress_bar_callback is None
    lightnings = trainer("callbacks.rich_progress_bar=null")
    assert type(lightnings.progress_bar_callback).__module__.startswith("lightning.pytorch.callbacks")
    ours = trainer()
    assert type(ours.progress_bar_callback).__name__ == "SparseRichProgressBar"


def test_a_run_continued_offline_is_a_new_wandb_run_of_the_same_name(make_cfg, tmp_path, caplog):
    """W&B cannot continue a run offline: a second ``offline-run-*`` of the same id started its history at
    step 0 again (uploading both overwrote the stopped part's steps). The continued run gets a new id,
    kept in the run dir; online, or with no earlier offline part, the id is the stored one."""
    from omegaconf import OmegaConf

    from lossbench.resume import keep_wandb_run_id

    cfg = make_cfg("logger=wandb", "logger.wandb.mode=offline", output_dir=tmp_path)
    config = {"paths": {"output_dir": str(tmp_path)}}
    keep_wandb_run_id(tmp_path, "abcd1234")
    (first,) = build_loggers(cfg.logger, config=config, wandb_id="abcd1234")
    assert first.version == "abcd1234", "no earlier offline part: the stored id"
    (tmp_path / "wandb" / "offline-run-20261207_094245-abcd1234").mkdir(parents=True)
    with caplog.at_level(logging.INFO, logger="lossbench.loggers"):
        (continued,) = build_loggers(cfg.logger, config=config, wandb_id="abcd1234")
    stored = (tmp_path / "wandb_run_id").read_text().strip()
    assert continued.version == stored != "abcd1234" and len(stored) == 8
    assert f"upload both with `wandb sync {tmp_path}/wandb/offline-run-*`" in caplog.text
    online = OmegaConf.merge(cfg.logger, {"wandb": {"mode": "disabled"}})  # any mode but offline
    (kept,) = build_loggers(online, config=config, wandb_id="abcd1234")
    assert kept.version == "abcd1234"


def test_a_run_continued_offline_logs_the_epochs_it_trained_before_the_stop(make_cfg, tmp_path, monkeypatch):
    """A SIGKILL leaves an offline W&B run of no rows (W&B writes its file in 32 KiB blocks): the continued
    run logs the run's CSV rows (those the resume kept) at their steps before it trains on."""
    from lossbench.loggers import BestCheckpointWandbLogger
    from lossbench.resume import keep_wandb_run_id

    cfg = make_cfg("logger=wandb", "logger.wandb.mode=offline", output_dir=tmp_path)
    config = {"paths": {"output_dir": str(tmp_path)}}
    keep_wandb_run_id(tmp_path, "abcd1234")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/acc\n0,9,1.5,\n0,9,,0.75\n1,19,0.5,\n1,19,,0.875\n"
    )
    logged = []
    monkeypatch.setattr(
        BestCheckpointWandbLogger, "log_metrics", lambda self, m, step: logged.append((step, m))
    )
    build_loggers(cfg.logger, config=config, wandb_id="abcd1234")
    assert logged == [], "no earlier offline part: the same run continues, its rows are in it"
    (tmp_path / "wandb" / "offline-run-20261207_094245-abcd1234").mkdir(parents=True)
    build_loggers(cfg.logger, config=config, wandb_id="abcd1234", replay=False)
    assert logged == [], "a packed replica logs its whole history itself"
    build_loggers(cfg.logger, config=config, wandb_id="abcd1234")
    assert logged == [
        (9, {"epoch": 0.0, "train/loss": 1.5}),
        (9, {"epoch": 0.0, "val/acc": 0.75}),
        (19, {"epoch": 1.0, "train/loss": 0.5}),
        (19, {"epoch": 1.0, "val/acc": 0.875}),
    ]


def test_log_model_leaves_out_the_last_checkpoint(monkeypatch, tmp_path):
    """Lightning's WandbLogger gives the ``best`` alias to each checkpoint callback's own best file; the
    unmonitored last_checkpoint's is its latest, so the alias ended on ``last.ckpt``. Its files are left
    out; the best epoch's callback (and any other monitored or user callback) goes to Lightning's."""
    from weakref import proxy

    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import WandbLogger

    from lossbench.checkpointing import RunDirCheckpoint
    from lossbench.loggers import BestCheckpointWandbLogger
    from lossbench.selection import TieBreakingCheckpoint

    passed = []
    monkeypatch.setattr(WandbLogger, "after_save_checkpoint", lambda self, cb: passed.append(cb))
    logger = BestCheckpointWandbLogger(save_dir=str(tmp_path), mode="offline", log_model=True)
    last = RunDirCheckpoint(dirpath=str(tmp_path), filename="last", monitor=None)
    best = TieBreakingCheckpoint(dirpath=str(tmp_path), monitor="val/acc", mode="max")
    users = ModelCheckpoint(dirpath=str(tmp_path))  # Lightning's own, unmonitored: uploaded as before
    for callback in (last, best, users):
        logger.after_save_checkpoint(proxy(callback))  # as ModelCheckpoint passes itself
    assert [(p.__class__, p.monitor) for p in passed] == [
        (TieBreakingCheckpoint, "val/acc"),
        (ModelCheckpoint, None),
    ]


def test_the_log_line_of_disabled_wandb_names_no_folder(make_cfg, tmp_path, caplog):
    cfg = make_cfg("logger=wandb", "logger.wandb.mode=disabled", output_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="lossbench.loggers"):
        build_loggers(cfg.logger, config={"paths": {"output_dir": str(tmp_path)}})
    assert "W&B logging disabled" in caplog.text and str(tmp_path) not in caplog.text


def test_wandb_job_type_and_name_carry_the_loss_overrides_as_compare_labels_variants(tmp_path):
    """Runs of ``loss=focal loss.gamma=1,3`` grouped by job type: two variants, not one averaged over both;
    a config composed before another (tune's batch of trials, a packed group) keeps its own."""
    from lossbench.config import compose_run
    from lossbench.resolvers import loss_variant

    first = compose_run(
        ["loss=focal", "loss.gamma=3", "+loss.alpha=0.25", "seed=2", "logger=wandb"], tmp_path
    )
    second = compose_run(["loss=ce", "loss.label_smoothing=0.1", "logger=wandb"], tmp_path / "b")
    assert first.logger.wandb.job_type == "focal loss.alpha=0.25 loss.gamma=3"
    assert first.logger.wandb.name == "focal loss.alpha=0.25 loss.gamma=3 seed=2"
    assert second.logger.wandb.job_type == "ce loss.label_smoothing=0.1"
    assert loss_variant("focal", ["loss.gamma=1", "seed=0"], 8) == "focal lo"
    assert loss_variant("focal", []) == "focal"


def test_wandb_project_from_the_environment_where_the_config_gives_none(make_cfg, monkeypatch):
    """Lightning's WandbLogger falls back to ``WANDB_PROJECT``; a project in the config still wins."""
    monkeypatch.setenv("WANDB_PROJECT", "myproj")
    assert make_cfg("logger=wandb").logger.wandb.project == "myproj"
    assert make_cfg("logger=wandb", "logger.wandb.project=mine").logger.wandb.project == "mine"
    monkeypatch.delenv("WANDB_PROJECT")
    assert make_cfg("logger=wandb").logger.wandb.project == "lossbench"
