"""A Slurm sweep's job request checked against its trainer before submission (``lossbench.slurm``)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from lossbench.config import compose_run
from lossbench.slurm import slurm_problems
from lossbench.sweep import SweepSummary

SLURM = "hydra/launcher=slurm"


def problems(*overrides: str) -> list[str]:
    return slurm_problems(compose_run([SLURM, *overrides]))


def test_a_request_that_fits_its_trainer_passes():
    assert problems("trainer=gpu") == []
    assert problems("trainer=cpu", "hydra.launcher.gpus_per_node=0") == []
    ddp = ("trainer=ddp", "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4")
    assert problems(*ddp) == []
    assert problems(*ddp, "trainer.num_nodes=2", "hydra.launcher.nodes=2") == []
    assert (
        problems("trainer=ddp_cpu", "hydra.launcher.tasks_per_node=2", "hydra.launcher.gpus_per_node=0") == []
    )
    assert problems("trainer=gpu", "hydra.launcher.gpus_per_node=0", "+hydra.launcher.gres=gpu:1") == []
    socket = "+hydra.launcher.additional_parameters.gpus_per_socket=1"  # any sbatch option naming GPUs
    assert problems("trainer=gpu", "hydra.launcher.gpus_per_node=null", socket) == []


def test_gpus_asked_for_a_cpu_trainer_are_refused_with_the_fix():
    (found,) = problems()  # the preset asks for one GPU; the default trainer trains on the CPU
    assert "trainer.accelerator=cpu" in found and "trainer=gpu" in found
    assert (
        "(hydra.launcher.gpus_per_node=1)" in found and "hydra.launcher.gpus_per_node=null for CPU" in found
    )
    (found,) = problems("hydra.launcher.gpus_per_node=0", "+hydra.launcher.gres=gpu:1")
    assert "(hydra.launcher.gres=gpu:1)" in found and "hydra.launcher.gres=null" in found
    (found,) = problems("hydra.launcher.gpus_per_node=0", "+hydra.launcher.additional_parameters.gpus=1")
    assert "idle" in found


def test_a_gpu_trainer_without_gpus_is_refused():
    (found,) = problems("trainer=gpu", "hydra.launcher.gpus_per_node=0")
    assert "asks for no GPU" in found and "hydra.launcher.gpus_per_node=" in found


def test_tasks_per_node_must_match_the_trainer_devices():
    (found,) = problems("trainer=ddp", "hydra.launcher.gpus_per_node=4")  # devices=-1: the node's 4 GPUs
    assert "hydra.launcher.tasks_per_node=4" in found
    (found,) = problems("trainer=gpu", "hydra.launcher.tasks_per_node=2")
    assert "hydra.launcher.tasks_per_node=1" in found and "same run again" in found
    found = problems("trainer=ddp", "trainer.devices=8", "hydra.launcher.gpus_per_node=4",
                     "hydra.launcher.tasks_per_node=8")  # fmt: skip
    assert len(found) == 1 and "hydra.launcher.gpus_per_node=8" in found[0]


def test_nodes_must_match_the_trainer():
    ddp = ("trainer=ddp", "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4")
    (found,) = problems(*ddp, "hydra.launcher.nodes=2")
    assert "trainer.num_nodes=1" in found and "hydra.launcher.nodes=2" in found


def test_other_launchers_and_swept_trainers_are_not_checked_here():
    assert slurm_problems(compose_run(["trainer=gpu"])) == []  # not Slurm
    cfg = compose_run([SLURM, "trainer=gpu", "hydra.launcher.tasks_per_node=2"])
    OmegaConf.set_readonly(cfg, False)
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["trainer.devices=1,2"]  # a sweep: no one request fits every job
    assert slurm_problems(cfg) == []
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["trainer.max_epochs=1,2"]  # asks Slurm for nothing else
    assert len(slurm_problems(cfg)) == 1
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["experiment=cifar10_lt,calibration_cifar10"]  # presets choose trainers
    assert slurm_problems(cfg) == []


def test_the_sweep_refuses_a_mismatch_before_submitting_and_lets_srun_start_ddp(caplog):
    with pytest.raises(SystemExit) as stop:
        SweepSummary().on_multirun_start(compose_run([SLURM]))
    assert stop.value.code == 2 and "trainer=gpu" in caplog.text
    # DDP needs no relaunch under srun: the multirun's DDP guard no longer refuses it
    SweepSummary().on_multirun_start(
        compose_run(
            [SLURM, "trainer=ddp_cpu", "hydra.launcher.tasks_per_node=2", "hydra.launcher.gpus_per_node=0"]
        )
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU trainer that finds no GPU")
def test_a_sweep_whose_one_trainer_needs_a_gpu_none_has_is_refused_before_its_first_job(caplog, tmp_path):
    """``-m trainer=ddp loss=ce,focal`` on a machine without a GPU: one refusal (exit 2) before any job,
    not each job failing alone; a sweep over the trainer is left to its jobs."""
    cfg = compose_run(["trainer=ddp", f"hydra.sweep.dir={tmp_path}"])
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["trainer=ddp", "loss=ce,focal"]
    with pytest.raises(SystemExit) as stop:
        SweepSummary().on_multirun_start(cfg)
    assert stop.value.code == 2 and "trainer=ddp needs a CUDA GPU" in caplog.text
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["trainer=ddp,cpu", "loss=ce"]
    SweepSummary().on_multirun_start(cfg)
    with open_dict(cfg):  # a +sweep preset's own sweep of the accelerator
        cfg.hydra.overrides.task = ["trainer=ddp"]
        cfg.hydra.sweeper.params = {"trainer.accelerator": "cpu,gpu", "loss": "ce"}
    SweepSummary().on_multirun_start(cfg)
