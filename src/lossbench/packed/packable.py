"""Which runs can train as one packed group: :func:`group_key` (what the replicas of a group share) and
:func:`packing_problems` (why runs cannot be packed, each reason one phrase naming the setting).

A run is packed only where its packed replica does and writes exactly what the run itself would: the
same training, the same best epoch, the same checkpoint files and the same logged metrics. A setting the
packed group does not reproduce (another checkpoint policy, a logger without a packed writer, a callback
that acts while training) sends the run the ordinary way, with the reason said.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench.packed.models import PACKED_TARGETS
from lossbench.selection import TIE_BREAK

#: trainer keys each replica may set for itself
PER_REPLICA_TRAINER_KEYS = ("gradient_clip_val", "gradient_clip_algorithm", "default_root_dir")
#: callbacks a packed group reproduces (the checkpoints, each replica's own) or may leave out (the progress
#: bar, which changes nothing a run writes)
PACKED_CALLBACKS = ("model_checkpoint", "last_checkpoint", "rich_progress_bar")
#: loggers a packed replica writes as its run does (:mod:`lossbench.packed.run_files`)
PACKED_LOGGERS = ("csv", "wandb")
#: the checkpoint policy a replica's checkpoints follow: one file kept, written at the end of every
#: training epoch (the callbacks' settings and their defaults)
CHECKPOINT_POLICY: dict[str, tuple[Any, ...]] = {
    "save_top_k": (1,),
    "save_last": (None, False),
    "every_n_epochs": (None, 1),
    "every_n_train_steps": (None, 0),
    "train_time_interval": (None,),
    "save_on_train_epoch_end": (None,),
    "save_weights_only": (False, True),
}
#: per checkpoint callback, its class and the settings a replica's checkpoints follow; any other value
#: of one of these settings is a policy the packed group does not reproduce
CHECKPOINT_SETTINGS: dict[str, tuple[str, dict[str, tuple[Any, ...]]]] = {
    "model_checkpoint": ("lossbench.selection.TieBreakingCheckpoint", CHECKPOINT_POLICY),
    "last_checkpoint": (
        "lossbench.checkpointing.RunDirCheckpoint",
        {"monitor": (None,), **CHECKPOINT_POLICY},
    ),
}


def callback_names(cfg: DictConfig) -> list[str]:
    """The run's callbacks (the keys of ``callbacks`` that are set)."""
    return sorted(k for k, v in (cfg.get("callbacks") or {}).items() if v is not None)


def group_key(cfg: DictConfig) -> dict[str, Any]:
    """What replicas of one packed group share: data (but its ``seed``), split, model, trainer, callbacks."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    data = {k: v for k, v in resolved["data"].items() if k != "seed"}
    trainer = {k: v for k, v in resolved["trainer"].items() if k not in PER_REPLICA_TRAINER_KEYS}
    return {
        "data": data,
        "data_seed": resolved["data_seed"],
        "model": resolved["model"],
        "trainer": trainer,
        "callbacks": callback_names(cfg),
        "test": resolved.get("test", True),
    }


def in_memory(data: dict[str, Any]) -> bool:
    """Whether the data config's class holds its splits as in-memory tensors
    (:class:`~lossbench.data.base.InMemoryDataModule`); found from its ``_target_``, nothing built."""
    from lossbench.data.base import InMemoryDataModule

    module, _, name = str(data.get("_target_")).rpartition(".")
    try:
        target = getattr(importlib.import_module(module), name, None)
    except (ImportError, ValueError):  # a missing target: the run's own checks name it
        return False
    return isinstance(target, type) and issubclass(target, InMemoryDataModule)


def seed_problems(cfg: DictConfig) -> list[str]:
    """A ``data.seed`` other than ``seed``: a replica's batches and augmentation follow its seed."""
    data_seed = (cfg.get("data") or {}).get("seed", cfg.get("seed"))
    if data_seed != cfg.get("seed"):
        return [f"data.seed={data_seed} differs from seed={cfg.get('seed')}: not packed"]
    return []


def tie_break_problems(cfg: DictConfig) -> list[str]:
    """A best-epoch tie break other than the one a replica's selection follows."""
    tie_break = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("tie_break", TIE_BREAK)
    if tie_break != TIE_BREAK:
        return [f"callbacks.model_checkpoint.tie_break={tie_break} is not packed"]
    return []


def start_problems(cfg: DictConfig) -> list[str]:
    """A checkpoint the run starts from (``ckpt_path=``)."""
    path = cfg.get("ckpt_path")
    return [f"ckpt_path={path} continues that checkpoint the ordinary way"] if path else []


def optimizer_problems(cfg: DictConfig) -> list[str]:
    """An optimizer whose ``step`` needs a closure (``torch.optim.LBFGS``): a replica's step has none."""
    import inspect

    target = str(((cfg.get("optim") or {}).get("optimizer") or {}).get("_target_"))
    module, _, name = target.rpartition(".")
    try:
        step = getattr(importlib.import_module(module), name).step
        closure = inspect.signature(step).parameters.get("closure")
    except (ImportError, ValueError, AttributeError, TypeError):  # the run's own checks name a bad target
        return []
    if closure is not None and closure.default is inspect.Parameter.empty:
        return [f"optim.optimizer._target_={target} needs a closure in each step: not packed"]
    return []


def logger_problems(cfg: DictConfig) -> list[str]:
    """A logger a packed replica does not write as its run does."""
    loggers = sorted(k for k, v in (cfg.get("logger") or {}).items() if v is not None)
    if others := [name for name in loggers if name not in PACKED_LOGGERS]:
        packed = ", ".join(PACKED_LOGGERS)
        return [f"logger.{others[0]} is not written by a packed replica (packed: {packed})"]
    if "wandb" in loggers and (uploads := cfg.logger.wandb.get("log_model", False)):
        return [f"logger.wandb.log_model={uploads}: a packed replica uploads no checkpoints"]
    return []


def checkpoint_problems(cfg: DictConfig) -> list[str]:
    """Why the run's checkpoints are not what a packed replica writes: a checkpoint callback of another
    class or policy, a best checkpoint on another metric than ``monitor``, or none at all while the
    Trainer adds Lightning's own."""
    nodes = cfg.get("callbacks") or {}
    problems = []
    for name, (target, allowed) in CHECKPOINT_SETTINGS.items():
        node = nodes.get(name)
        if node is None:
            continue
        if node.get("_target_") != target:
            problems.append(
                f"callbacks.{name}._target_={node.get('_target_')} is not packed (packed: {target})"
            )
            continue
        for key, values in allowed.items():
            value = node.get(key, values[0])
            if value not in values:
                problems.append(f"callbacks.{name}.{key}={value} is not packed")
    best = nodes.get("model_checkpoint")
    if best is not None:
        monitor = cfg.get("monitor") or {}
        for key, own in (("monitor", "metric"), ("mode", "mode")):
            if best.get(key) != monitor.get(own):
                problems.append(
                    f"callbacks.model_checkpoint.{key}={best.get(key)} differs from monitor.{own}="
                    f"{monitor.get(own)} (a packed replica's best epoch follows monitor.{own})"
                )
    trainer_checkpoints = (cfg.get("trainer") or {}).get("enable_checkpointing", True)
    if trainer_checkpoints and not any(nodes.get(name) is not None for name in CHECKPOINT_SETTINGS):
        problems.append(
            "without callbacks.model_checkpoint or callbacks.last_checkpoint the Trainer writes Lightning's "
            "own checkpoint, which a packed replica does not (+trainer.enable_checkpointing=false: none)"
        )
    return problems


def packing_problems(cfgs: Sequence[DictConfig]) -> list[str]:
    """Why ``cfgs`` cannot be trained as one packed group (empty: they can)."""
    if not cfgs:
        return ["no configs to pack"]
    problems = []
    first = group_key(cfgs[0])
    for i, cfg in enumerate(cfgs[1:], start=1):
        key = group_key(cfg)
        differ = sorted(k for k in first if key[k] != first[k])
        if differ:
            problems.append(f"job {i} differs from job 0 in {', '.join(differ)}")
    model, trainer = first["model"], first["trainer"]
    for name in first["callbacks"]:
        if name not in PACKED_CALLBACKS:
            problems.append(f"callbacks.{name} is not packed (packed: {', '.join(PACKED_CALLBACKS)})")
    checks = (seed_problems, tie_break_problems, start_problems, checkpoint_problems, logger_problems)
    for check in (*checks, optimizer_problems):
        for cfg in cfgs:  # each kind of problem said once, for the first run that has it
            if own := check(cfg):
                problems.extend(own)
                break
    if not in_memory(first["data"]):
        problems.append(
            f"data {first['data'].get('_target_')} is not held in memory (packed training gathers each "
            "replica's batches from in-memory tensors)"
        )
    if model.get("_target_") not in PACKED_TARGETS:
        problems.append(
            f"model {model.get('_target_')} has no packed version (mlp, cnn, resnet32 and resnet18 have)"
        )
    if model.get("compile") or model.get("channels_last"):
        problems.append("model.compile and model.channels_last are not packed")
    if str(trainer.get("precision", "32-true")) in ("16", "16-mixed", "16-true"):
        problems.append("trainer.precision=16-mixed scales the loss, which per-replica clipping ignores")
    if trainer.get("accumulate_grad_batches", 1) != 1:
        problems.append("trainer.accumulate_grad_batches > 1 is not packed")
    if trainer.get("check_val_every_n_epoch", 1) != 1:  # its run writes last.ckpt after validations only
        problems.append("trainer.check_val_every_n_epoch other than 1 is not packed")
    interval = trainer.get("val_check_interval")  # an int counts batches: 1 validates after each one
    if interval is not None and not (isinstance(interval, float) and interval == 1.0):
        problems.append("trainer.val_check_interval (validation within an epoch) is not packed")
    devices = trainer.get("devices", 1)
    if not (devices == 1 or devices == [0] or devices == "1") or trainer.get("num_nodes", 1) != 1:
        problems.append("packed training runs on one device (trainer.devices=1)")
    return problems
