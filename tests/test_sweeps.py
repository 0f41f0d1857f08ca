"""Sweeps: failed jobs recorded, end-of-sweep table, presets (sweep, Slurm), DDP guard, W&B."""

from __future__ import annotations

import json
import sys
import types

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from lossbench.config import CONFIG_DIR
from lossbench.errors import ConfigError
from lossbench.loggers import log_wandb_summary, stressor_tags
from lossbench.sweep import check_ddp_in_multirun
from tests.conftest import ROOT, read_metrics, run_cli

FAST = ("trainer.max_epochs=1", "callbacks.rich_progress_bar=null")


def hydra_cfg(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.slow
def test_failing_job_is_recorded_and_the_sweep_finishes(tmp_path):
    """gamma=-1 is invalid: that job is recorded as failed, the other trains; table printed; exit status 1."""
    proc = run_cli(
        "-m", "loss=focal", "loss.gamma=-1,2", *FAST, "hydra.sweep.dir=sweep", cwd=tmp_path, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    failed, ok = read_metrics(tmp_path / "sweep" / "0"), read_metrics(tmp_path / "sweep" / "1")
    assert failed["status"] == "failed" and failed["error"]["type"] == "ConfigError"
    assert "gamma" in failed["error"]["message"] and "loss.gamma=-1" in failed["overrides"]
    assert failed["config"]["loss"]["gamma"] == -1
    assert ok["status"] == "ok" and ok["test"]["test/acc"] > 0.5
    assert "2 jobs, 1 ok, 1 failed" in out and "ConfigError: loss.gamma=-1" in out
    summary = json.loads((tmp_path / "sweep" / "sweep_summary.json").read_text())
    assert [r["status"] for r in summary] == ["failed", "ok"]
    # W&B conventions: every job of the sweep shares one group (the sweep's), job_type = loss
    wandb_cfg = ok["config"]["logger"]["wandb"]
    assert wandb_cfg["group"] == "train_sweep" and wandb_cfg["job_type"] == "focal"
    assert failed["config"]["logger"]["wandb"]["group"] == "train_sweep"
    assert len(list((tmp_path / "sweep" / "1" / "wandb").glob("offline-run-*"))) == 1


def test_named_sweep_preset():
    cfg = hydra_cfg("+sweep=losses_x_seeds")
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.task_name == "losses_x_seeds"
    assert dict(cfg.hydra.sweeper.params) == {"loss": "ce,focal,mse,huber", "seed": "0,1,2"}


def test_slurm_launcher_preset():
    cfg = hydra_cfg(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.tasks_per_node=4",
        "hydra.launcher.timeout_min=240",
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == (
        "gpu",
        4,
        4,
        240,
    )


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    """The Slurm preset's plugin, run locally: two jobs in their own processes, then the table."""
    proc = run_cli(
        "-m",
        "hydra/launcher=submitit_local",
        "loss=ce,mse",
        *FAST,
        "logger=csv",
        "hydra.sweep.dir=sl",
        cwd=tmp_path,
    )
    assert "2 jobs, 2 ok, 0 failed" in proc.stdout
    assert [read_metrics(tmp_path / "sl" / str(i))["loss"] for i in range(2)] == ["ce", "mse"]
    assert list((tmp_path / "sl" / ".submitit").iterdir())


@pytest.mark.slow
def test_ddp_in_multirun_fails_fast(tmp_path):
    """Subprocess DDP would re-run the whole sweep in each child: refused before any job, naming ddp_spawn."""
    proc = run_cli(
        "-m",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "++trainer.strategy=ddp",
        "loss=ce,mse",
        "hydra.sweep.dir=dd",
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "trainer.strategy=ddp_spawn" in proc.stderr + proc.stdout
    assert not (tmp_path / "dd" / "0").exists()


def test_ddp_guard_cases(monkeypatch):
    def trainer(**kw):
        return OmegaConf.create({"accelerator": "cpu", "devices": 1, "strategy": "auto", **kw})

    with pytest.raises(ConfigError, match="ddp_spawn"):
        check_ddp_in_multirun(trainer(devices=2, strategy="ddp"))
    with pytest.raises(ConfigError):
        check_ddp_in_multirun(trainer(devices="0,1", strategy="ddp_find_unused_parameters_true"))
    check_ddp_in_multirun(trainer(devices=2, strategy="ddp_spawn"))
    check_ddp_in_multirun(trainer(devices=1, strategy="ddp"))
    monkeypatch.setattr("lossbench.sweep._launched_externally", lambda: True)  # srun / torchrun
    check_ddp_in_multirun(trainer(devices=2, strategy="ddp"))


def test_wandb_tags_and_summary(monkeypatch):
    assert stressor_tags({"data": {"imbalance_factor": 100, "label_noise": 0.2}}) == [
        "imbalance=100",
        "noise=0.2",
    ]
    assert stressor_tags({"data": {"imbalance_factor": 1, "label_noise": 0.0}}) == []
    assert stressor_tags({"data": {"name": "digits"}}) == []
    run = types.SimpleNamespace(summary={})
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(run=run))
    log_wandb_summary(
        {"monitor": {"metric": "val/acc", "best": 0.9}, "test": {"test/acc": 0.8}, "epochs": 3, "wall_s": 1.0}
    )
    assert run.summary["best/val/acc"] == 0.9 and run.summary["best/monitor"] == 0.9
    assert run.summary["final/test/acc"] == 0.8


def test_wandb_sweep_drives_the_hydra_entry_point():
    spec = yaml.safe_load((ROOT / "wandb_sweep.yaml").read_text())
    assert spec["program"] == "train.py" and "${args_no_hyphens}" in spec["command"]
    assert spec["metric"]["name"] == "best/monitor"
    # what `wandb agent` passes: key=value for each parameter, no dashes; it must compose
    args = [f"{k}={v['values'][0] if 'values' in v else v['value']}" for k, v in spec["parameters"].items()]
    cfg = hydra_cfg(*args)
    assert cfg.loss._target_.endswith("CrossEntropyLoss") and cfg.seed == 0


@pytest.mark.slow
def test_parallel_launcher_gives_the_sequential_metrics(tmp_path):
    """hydra/launcher=parallel (joblib, 2 jobs at once, one CPU thread each) vs one job after another."""
    common = ("-m", "loss=ce,focal", "seed=0,1", "trainer.max_epochs=1", "logger=csv")
    run_cli(*common, "hydra.sweep.dir=seq", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    proc = run_cli(*common, "hydra/launcher=parallel", "hydra.sweep.dir=par", cwd=tmp_path)
    assert "4 jobs, 4 ok" in proc.stdout + proc.stderr
    for job in range(4):
        seq, par = read_metrics(tmp_path / "seq" / str(job)), read_metrics(tmp_path / "par" / str(job))
        assert par["test"] == seq["test"] and (par["loss"], par["seed"]) == (seq["loss"], seq["seed"])
    assert json.loads((tmp_path / "par" / "sweep_summary.json").read_text())[3]["status"] == "ok"


def test_job_gpu_resolver_pins_a_job_to_one_device():
    from hydra.core.hydra_config import HydraConfig

    cfg = hydra_cfg("trainer.devices=${lossbench.job_gpu:}")
    HydraConfig.instance().set_config(cfg)
    assert list(cfg.trainer.devices) == [0]


@pytest.mark.slow
def test_a_four_job_sweep_prints_a_line_or_so_per_step_not_pages(tmp_path):
    """W&B quiet, Lightning's start-up lines only in each job's log file, no test table per job."""
    sweep = ("-m", "loss=ce,focal,mse,huber", "trainer.max_epochs=2", "hydra.sweep.dir=sw")
    proc = run_cli(*sweep, cwd=tmp_path)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) <= 60, "\n".join(lines)
    text = "\n".join(lines)
    assert "Tip:" not in text and "GPU available" not in text and "Test metric" not in text
    assert "4 jobs, 4 ok" in text and text.count(" of 4 (loss=") == 4, "one line per job: #n of 4"
    assert "GPU available" in (tmp_path / "sw" / "0" / "train.log").read_text(), "kept in the job's log"
    assert "v_num" not in text and "train/loss:" in text, "the bar shows the train loss, not v_num"


def test_sweep_size_counts_the_basic_sweepers_jobs():
    from lossbench.sweep import sweep_size

    assert sweep_size(["loss=ce,focal,mse", "seed=range(3)", "trainer.max_epochs=3"]) == 9
    assert sweep_size(["loss=ce"]) == 1
    assert sweep_size(["optim.optimizer.lr=interval(0.001,0.1)"]) is None  # not enumerable
