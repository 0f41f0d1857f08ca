"""A sweep submitted to Slurm (``hydra/launcher=slurm``): what each job asks Slurm for, checked against the
job's trainer before anything is submitted.

Under Slurm, srun starts ``tasks_per_node`` processes on each of ``nodes`` nodes and Lightning
(``SLURMEnvironment``) makes each process one of the trainer's devices: a job must ask for one task per
device on each node, as many nodes as ``trainer.num_nodes``, GPUs where its trainer trains on one and none
where it does not. A mismatch would otherwise show only once the job runs, after its wait in the queue: a
DDP job fails in Lightning's check, a single-device job with several tasks trains the same run in each, and
a CPU job holds GPUs it leaves idle.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench.config import launcher_of
from lossbench.overrides import override_list, swept_keys_of

#: the launcher's own options that ask for GPUs (an ``additional_parameters`` key naming ``gpu`` or
#: ``gres`` does too, as sbatch's ``--gpus-per-socket`` or ``--gres``)
GPU_OPTIONS = ("gpus_per_node", "gpus_per_task", "cpus_per_gpu", "mem_per_gpu")


def is_slurm_launcher(config: DictConfig) -> bool:
    """Whether the multirun's launcher is hydra-submitit-launcher's ``SlurmLauncher``."""
    return is_slurm(launcher_of(config))


def is_slurm(launcher: Any) -> bool:
    """Whether a launcher config (``hydra.launcher``) is hydra-submitit-launcher's ``SlurmLauncher``."""
    return str((launcher or {}).get("_target_", "")).endswith("SlurmLauncher")


def gpu_request(launcher: Any) -> tuple[str, str] | None:
    """The first of the launcher's settings that asks Slurm for GPUs, as ``(the setting, the override that
    drops it)``; None where none does."""
    for key in GPU_OPTIONS:
        if launcher.get(key):
            return f"hydra.launcher.{key}={launcher.get(key)}", f"hydra.launcher.{key}=null"
    if "gpu" in str(launcher.get("gres") or ""):
        return f"hydra.launcher.gres={launcher.get('gres')}", "hydra.launcher.gres=null"
    for key, value in (launcher.get("additional_parameters") or {}).items():
        if "gpu" in str(key) or "gres" in str(key):
            name = f"hydra.launcher.additional_parameters.{key}"
            return f"{name}={value}", f"~{name}"
    return None


def devices_per_node(trainer: Any, gpus_per_node: int) -> int | None:
    """Processes per node a trainer asks Lightning for (None: decided on the node, e.g. all its CPUs)."""
    devices, accelerator = trainer.get("devices", "auto"), str(trainer.get("accelerator", "auto"))
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:
            return len([d for d in text.split(",") if d.strip()])
        devices = -1 if text == "auto" else int(text) if text.lstrip("-").isdigit() else None
    if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)):
        return len(devices)
    if devices == -1:
        return gpus_per_node if accelerator in ("gpu", "cuda") and gpus_per_node else None
    return int(devices) if isinstance(devices, int) else None


#: the options that decide what a job needs from Slurm (an experiment preset may choose the trainer)
REQUEST_KEYS = ("trainer", "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "experiment")


def swept_trainer(config: DictConfig) -> bool:
    """Whether the sweep varies what its jobs need from Slurm (:data:`REQUEST_KEYS`), on the command line
    or in ``hydra.sweeper.params`` (a ``+sweep=`` preset's): one request cannot fit them all, and the
    check is left out."""
    task = override_list(OmegaConf.select(config, "hydra.overrides.task"))
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    swept = swept_keys_of([*(f"{k}={v}" for k, v in params.items()), *task])
    return bool(swept & set(REQUEST_KEYS))


def slurm_problems(config: DictConfig) -> list[str]:
    """What a Slurm sweep's jobs would ask for that their trainer cannot use (empty: none, or not Slurm)."""
    trainer = config.get("trainer")
    if not is_slurm_launcher(config) or trainer is None or swept_trainer(config):
        return []
    launcher = config.hydra.launcher
    accelerator = str(trainer.get("accelerator", "auto"))
    gpus = int(launcher.get("gpus_per_node") or 0)
    tasks, nodes = int(launcher.get("tasks_per_node") or 1), int(launcher.get("nodes") or 1)
    problems = []
    request = gpu_request(launcher)
    if accelerator == "cpu" and request is not None:
        problems.append(
            f"hydra/launcher=slurm asks each job for GPUs ({request[0]}) but trainer.accelerator=cpu "
            f"leaves them idle: add trainer=gpu (trainer=ddp for several per job), or {request[1]} for "
            "CPU jobs"
        )
    if accelerator in ("gpu", "cuda") and request is None:
        problems.append(
            f"trainer.accelerator={accelerator} but hydra/launcher=slurm asks for no GPU: set "
            "hydra.launcher.gpus_per_node=<GPUs per node>"
        )
    devices = devices_per_node(trainer, gpus)
    if devices is not None and devices != tasks:
        problems.append(
            f"each job would start {tasks} Slurm task(s) per node (hydra.launcher.tasks_per_node={tasks}) "
            f"for {devices} trainer device(s) per node: Lightning runs one device per task, so set "
            f"hydra.launcher.tasks_per_node={devices}"
            + (" (with one device, each further task would train the same run again)" if devices == 1 else "")
        )
    if accelerator in ("gpu", "cuda") and devices is not None and gpus and devices > gpus:
        problems.append(
            f"trainer.devices asks for {devices} GPUs per node but hydra.launcher.gpus_per_node={gpus}: "
            f"set hydra.launcher.gpus_per_node={devices}"
        )
    num_nodes = int(trainer.get("num_nodes") or 1)
    if num_nodes != nodes:
        problems.append(
            f"hydra.launcher.nodes={nodes} but trainer.num_nodes={num_nodes}: set both to the nodes one job "
            "trains on"
        )
    return problems
