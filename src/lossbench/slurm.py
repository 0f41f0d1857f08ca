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

#: the ``additional_parameters`` keys (sbatch options) that ask for GPUs
_GPU_OPTIONS = ("gpus", "gres", "gpus_per_node", "gpus_per_task", "gpus-per-node", "gpus-per-task")


def is_slurm_launcher(config: DictConfig) -> bool:
    """Whether the multirun's launcher is hydra-submitit-launcher's ``SlurmLauncher``."""
    launcher = OmegaConf.select(config, "hydra.launcher") or {}
    return str(launcher.get("_target_", "")).endswith("SlurmLauncher")


def asks_for_gpus(launcher: Any) -> bool | None:
    """Whether the launcher's jobs ask Slurm for GPUs (None: not said here, e.g. by ``setup`` lines)."""
    extra = launcher.get("additional_parameters") or {}
    if any(str(k) in _GPU_OPTIONS for k in extra):
        return True
    gres = str(launcher.get("gres") or "")
    return bool(launcher.get("gpus_per_node") or launcher.get("gpus_per_task") or "gpu" in gres)


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


#: the trainer's options that decide what a job needs from Slurm
REQUEST_KEYS = ("trainer", "trainer.accelerator", "trainer.devices", "trainer.num_nodes")


def swept_trainer(config: DictConfig) -> bool:
    """Whether the sweep varies what its jobs need from Slurm (:data:`REQUEST_KEYS`): one request cannot
    fit them all, and the check is left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = list(OmegaConf.select(config, "hydra.overrides.task") or [])
    overrides = OverridesParser.create().parse_overrides(task)
    return any(o.is_sweep_override() and o.key_or_group in REQUEST_KEYS for o in overrides)


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
    if accelerator == "cpu" and asks_for_gpus(launcher):
        problems.append(
            f"hydra/launcher=slurm asks each job for GPUs (hydra.launcher.gpus_per_node={gpus}) but "
            "trainer.accelerator=cpu leaves them idle: add trainer=gpu (trainer=ddp for several per job), or "
            "hydra.launcher.gpus_per_node=0 for CPU jobs"
        )
    if accelerator in ("gpu", "cuda") and not asks_for_gpus(launcher):
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
