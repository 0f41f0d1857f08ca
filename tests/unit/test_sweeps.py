"""Sweeps: failed jobs recorded, end-of-sweep table, presets (sweep, Slurm), DDP guard, W&B."""

from __future__ import annotations

import sys
import types

import pytest
import yaml
from omegaconf import OmegaConf

from lossbench.checks import check_ddp_in_multirun
from lossbench.config import compose_run
from lossbench.errors import ConfigError
from lossbench.loggers import log_wandb_summary, stressor_tags
from tests.conftest import ROOT


def hydra_cfg(*overrides: str):
    return compose_run(list(overrides))


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


def test_a_stop_to_the_process_that_submitted_a_slurm_sweep_says_the_jobs_go_on(
    monkeypatch, tmp_path, caplog
):
    """SIGTERM to the submitting process after the array job was submitted: its jobs go on running on the
    cluster, which the one line says with how to follow them, not "nothing was run"."""
    import logging
    import os
    import signal

    from lossbench.sweep_stop import say_jobs_go_on_on_signal

    exits: list[int] = []

    def no_exit(status: int) -> None:
        exits.append(status)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(os, "_exit", no_exit)
    try:
        say_jobs_go_on_on_signal(tmp_path / "sweep")
        with caplog.at_level(logging.ERROR, logger="lossbench"):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.01)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert exits == [143]
    assert "stopped by SIGTERM: the jobs submitted to Slurm go on running on the cluster" in caplog.text
    assert f"resume=true hydra.sweep.dir={tmp_path / 'sweep'}" in caplog.text


def test_ddp_guard_cases(monkeypatch):
    def trainer(**kw):
        return OmegaConf.create({"accelerator": "cpu", "devices": 1, "strategy": "auto", **kw})

    with pytest.raises(ConfigError, match="ddp_spawn"):
        check_ddp_in_multirun(trainer(devices=2, strategy="ddp"))
    with pytest.raises(ConfigError):
        check_ddp_in_multirun(trainer(devices="0,1", strategy="ddp_find_unused_parameters_true"))
    check_ddp_in_multirun(trainer(devices=2, strategy="ddp_spawn"))
    check_ddp_in_multirun(trainer(devices=1, strategy="ddp"))
    monkeypatch.setattr("lossbench.checks._launched_externally", lambda: True)  # srun / torchrun
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
    assert run.summary["final/test/acc"] == 0.8 and run.summary["status"] == "ok"


def test_a_run_ended_by_an_error_or_a_signal_ends_failed_in_wandb(monkeypatch):
    """W&B shows a run that ended with exit code 0 as finished: a failed or stopped run ends with its
    command's exit status, and its summary says why."""
    from lossbench.errors import NonFiniteLossError, RunInterrupted
    from lossbench.loggers import finishing_wandb

    ended = []

    def wandb_with_a_run() -> types.SimpleNamespace:
        wandb = types.SimpleNamespace(run=types.SimpleNamespace(summary={}))

        def finish(exit_code: int | None = None) -> None:  # as wandb.finish: no active run after it
            ended.append((exit_code, dict(wandb.run.summary)))
            wandb.run = None

        wandb.finish = finish
        monkeypatch.setitem(sys.modules, "wandb", wandb)
        return wandb

    wandb_with_a_run()
    with pytest.raises(NonFiniteLossError), finishing_wandb():
        raise NonFiniteLossError("CrossEntropyLoss returned nan at step 2")
    assert ended[-1] == (2, {"status": "failed", "error": "CrossEntropyLoss returned nan at step 2"})
    wandb_with_a_run()
    with pytest.raises(RuntimeError), finishing_wandb():
        try:
            raise RunInterrupted("SIGTERM", "stopped by SIGTERM")
        except RunInterrupted as err:
            raise RuntimeError("a library's wrapper") from err
    assert ended[-1][0] == 143 and ended[-1][1]["status"] == "interrupted"
    wandb_with_a_run()
    with pytest.raises(RunInterrupted), finishing_wandb():  # a stop outside fit and test: no message yet
        raise RunInterrupted("SIGTERM", "")
    assert ended[-1] == (143, {"status": "interrupted", "error": "stopped by SIGTERM"})
    wandb = wandb_with_a_run()
    wandb.run.summary["status"] = "ok"  # the run's record was written and logged: a stop then keeps it
    with pytest.raises(RunInterrupted), finishing_wandb():
        raise RunInterrupted("SIGTERM", "")
    assert ended[-1] == (None, {"status": "ok"})
    wandb_with_a_run()
    with finishing_wandb():
        pass
    assert ended[-1] == (None, {})


def test_wandb_sweep_drives_the_hydra_entry_point():
    spec = yaml.safe_load((ROOT / "wandb_sweep.yaml").read_text())
    assert spec["program"] == "train.py" and "${args_no_hyphens}" in spec["command"]
    assert spec["metric"]["name"] == "best/monitor"
    # what `wandb agent` passes: key=value for each parameter, no dashes; it must compose
    args = [f"{k}={v['values'][0] if 'values' in v else v['value']}" for k, v in spec["parameters"].items()]
    cfg = hydra_cfg(*args)
    assert cfg.loss._target_.endswith("CrossEntropyLoss") and cfg.seed == 0


def test_job_gpu_resolver_pins_a_job_to_one_device():
    from hydra.core.hydra_config import HydraConfig

    cfg = hydra_cfg("trainer.devices=${lossbench.job_gpu:}")
    HydraConfig.instance().set_config(cfg)
    assert list(cfg.trainer.devices) == [0]


def basic_sweep(task: list[str], params: dict | None = None):
    sweeper = {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": params}
    return OmegaConf.create({"sweeper": sweeper, "overrides": {"task": task}})


def test_the_basic_sweepers_jobs_are_enumerated_in_its_order():
    from lossbench.sweep_jobs import basic_sweep_jobs

    jobs = basic_sweep_jobs(basic_sweep(["loss=ce,focal,mse", "seed=range(3)", "trainer.max_epochs=3"]))
    assert len(jobs) == 9 and jobs[1] == ["loss=ce", "seed=1", "trainer.max_epochs=3"]
    assert jobs[8] == ["loss=mse", "seed=2", "trainer.max_epochs=3"]
    assert basic_sweep_jobs(basic_sweep(["loss=ce"])) == [["loss=ce"]]
    assert basic_sweep_jobs(basic_sweep(["optim.optimizer.lr=interval(0.001,0.1)"])) is None  # not enumerable
    # a preset's params first; the command line's value of the same key takes their place
    preset = basic_sweep(["+sweep=smoke", "seed=0,1,2"], params={"loss": "ce,focal", "seed": "0,1"})
    assert basic_sweep_jobs(preset)[:2] == [
        ["loss=ce", "seed=0", "+sweep=smoke"],
        ["loss=ce", "seed=1", "+sweep=smoke"],
    ]
    assert len(basic_sweep_jobs(preset)) == 6


def test_a_sweep_continued_with_its_overrides_in_another_order_is_refused_before_any_job(tmp_path):
    """Job numbers follow the order: job 1 of `seed=0,1 loss=ce,focal` is job 2 of `loss=ce,focal seed=0,1`,
    and its dir held the other job's checkpoints (the failed record overwrote its metrics.json)."""
    from lossbench.sweep import check_continued_sweep

    def config(task: list[str]) -> OmegaConf:
        return OmegaConf.create(
            {"resume": True, "hydra": {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": task}}}
        )

    OmegaConf.save(config(["loss=ce,focal", "seed=0,1", "logger=csv"]), tmp_path / "multirun.yaml")
    check_continued_sweep(config(["loss=ce,focal", "seed=0,1", "logger=csv", "resume=true"]))
    with pytest.raises(ConfigError, match=r"holds a sweep started as `-m loss=ce,focal seed=0,1 logger=csv`"):
        check_continued_sweep(config(["seed=0,1", "loss=ce,focal", "logger=csv", "resume=true"]))


def test_a_presets_sweeper_params_count_in_the_sweeps_size(tmp_path):
    """`+sweep=smoke` printed `job #3 of 1`: its hydra.sweeper.params were not counted."""
    from lossbench.sweep_jobs import planned_size

    saved = {
        "hydra": {
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "params": {"loss": "ce,focal", "seed": "0,1"},
            },
            "overrides": {"task": ["+sweep=smoke", "seed=0,1,2"]},
        }
    }
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "multirun.yaml")
    assert planned_size(tmp_path) == 6  # the command line's seeds replace the preset's


def test_an_override_holding_an_interpolation_is_read_as_written(tmp_path):
    """``tags=[${loss_name}]`` on the command line: ``multirun.yaml`` keeps it unescaped, and reading it
    resolved failed outside a job (no table at the sweep's end, the continue command lost)."""
    from lossbench.signals import saved_sweep_command
    from lossbench.sweep import check_continued_sweep, swept_keys
    from lossbench.sweep_jobs import planned_size

    task = ["loss=ce,mse", "tags=[${loss_name}]"]
    saved = {
        "hydra": {
            "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
            "overrides": {"task": task, "hydra": ["hydra.mode=MULTIRUN"]},
            "sweep": {"dir": str(tmp_path)},
        },
        "loss_name": "${hydra:runtime.choices.loss}",
    }
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "multirun.yaml")
    assert planned_size(tmp_path) == 2 and swept_keys(tmp_path) == {"loss"}
    assert saved_sweep_command(tmp_path).endswith("-m loss=ce,mse 'tags=[${loss_name}]'")
    continued = OmegaConf.create({**saved, "resume": True})
    continued.hydra.overrides.task = [*task, "resume=true"]
    check_continued_sweep(continued)  # the same overrides: no error
