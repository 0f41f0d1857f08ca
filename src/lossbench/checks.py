"""Every check of a composed config, before any work: :func:`check_run` names all problems in one error.

Each ``*_problems`` function yields one phrase per problem (the key, its value, what it should be), so a
config with three mistakes is refused once, naming all three, instead of three runs one error at a time.
Checks that need the data (the task, the loss's contract, the monitored metric) run where the data is
built (:mod:`lossbench.build`, :meth:`lossbench.task.TaskSpec.monitor`).
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench.argument_checks import logger_needed_problems, unknown_argument_problems
from lossbench.config import CONFIG_DIR, chosen, in_multirun
from lossbench.errors import ConfigError, check_choice, check_range
from lossbench.overrides import override_list
from lossbench.value_checks import is_number, problem, value_problems

#: config keys whose type YAML cannot enforce
TYPED_KEYS: dict[str, tuple[type, ...]] = {
    "seed": (int,),
    "data_seed": (int,),
    "trainer.max_epochs": (int,),
    "data.batch_size": (int,),
    "nonfinite_check.every_n_steps": (int,),
    "trainer.accumulate_grad_batches": (int,),
    "optim.optimizer.lr": (int, float),
    "test": (bool,),
    "resume": (bool,),
}

#: strategies whose launcher starts its workers by running the script again (Lightning's subprocess launcher)
_RELAUNCHING = ("ddp", "fsdp", "deepspeed", "auto")
#: workers started inside the running process: safe under a multirun
_IN_PROCESS = ("spawn", "fork", "notebook")


def check_run(cfg: DictConfig) -> None:
    """Raise one :class:`ConfigError` naming every problem of ``cfg`` that the config alone shows."""
    problems = [
        *required_problems(cfg),
        *type_problems(cfg),
        *default_type_problems(cfg),
        *trainer_problems(cfg),
        *value_problems(cfg),
        *added_key_problems(cfg),
        *accelerator_problems(cfg),
        *logger_needed_problems(cfg),
        *unknown_argument_problems(cfg),
    ]
    if in_multirun():
        problems += ddp_in_multirun_problems(cfg.get("trainer"))
    raise_problems(list(dict.fromkeys(problems)))  # each problem once, in the order found


#: the table data module, whose file is checked before torch loads
TABLE_TARGET = "lossbench.data.table.TableDataModule"


def check_data_files(cfg: DictConfig) -> None:
    """Read and check a table's file (``data=table``) with pandas alone, before torch and Lightning load:
    every problem of the table in one error (:func:`lossbench.data.table_checks.check_table`)."""
    data = cfg.get("data") or {}
    if data.get("_target_") != TABLE_TARGET:
        return
    from lossbench.data.table_checks import TableOptions, check_table_file

    keys = ("target", "task", "drop", "split_column", "impute", "na_values", "drop_missing_target", "sep")
    keys += ("decimal", "encoding", "thousands")
    given = {
        k: OmegaConf.to_object(data[k]) if OmegaConf.is_config(data[k]) else data[k]
        for k in keys
        if k in data
    }
    check_table_file(Path(str(data.path)).expanduser(), TableOptions.from_config(**given))


def raise_problems(problems: list[str]) -> None:
    """One :class:`ConfigError`: the problem itself, or ``N problems: (1) ...; (2) ...``."""
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        numbered = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        raise ConfigError(f"{len(problems)} problems: {numbered}")


def required_problems(cfg: DictConfig) -> Iterator[str]:
    """Required keys (``???`` in their YAML) left unset."""
    missing = sorted(str(k) for k in OmegaConf.missing_keys(cfg))
    if missing:
        example = " ".join(f"{k}=..." for k in missing)
        yield f"{', '.join(missing)} must be set for this config: add {example} to the command"


def type_problems(cfg: DictConfig) -> Iterator[str]:
    """Overrides of the wrong type (``seed=abc``)."""
    for key, types in TYPED_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and types == (bool,):
            if not isinstance(value, bool):
                yield f"{key}={value!r} has the wrong type: expected true or false"
        elif value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            expected = "an integer" if types == (int,) else "a number"
            yield f"{key}={value!r} has the wrong type: expected {expected}"


#: values a key takes besides its default's type (Lightning's ``ModelCheckpoint(save_last="link")``)
ALSO_ACCEPTED: dict[str, tuple[Any, ...]] = {"save_last": ("link",), "check_files": ("full",)}
#: number keys that also take one number per dimension (``data.image_size=[H, W]``)
PER_DIMENSION = ("image_size",)
#: config groups whose option files give their keys' types (a number stays a number)
TYPED_GROUPS = ("loss", "optim", "model", "data", "callbacks")


def default_type_problems(cfg: DictConfig) -> Iterator[str]:
    """Values of the wrong type for the chosen option's own defaults (``loss.gamma=abc`` where
    ``conf/loss/focal.yaml`` says ``gamma: 2.0``; ``data.standardize=maybe`` where the data sets' base
    file says ``true``), found before the class that would refuse them loads."""
    for group in TYPED_GROUPS:
        option = CONFIG_DIR / group / f"{chosen(group, '')}.yaml"
        node = cfg.get(group)
        if not option.is_file() or not isinstance(node, DictConfig):
            continue
        yield from _against(node, option_defaults(option), group)


@functools.cache  # read once per process: every run, trial and packed replica checks its config
def option_defaults(path: Path) -> dict[str, Any]:
    """An option file's keys and values, over those of the files its ``defaults`` list names (in the same
    group, or ``/name@_here_`` from the config root), unresolved. Shared between calls: not to be changed."""
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    own = own if isinstance(own, dict) else {}
    merged = OmegaConf.create()
    for entry in own.pop("defaults", None) or []:
        if (
            not isinstance(entry, str)
            or entry == "_self_"
            or ("@" in entry and not entry.endswith("@_here_"))
        ):
            continue
        name = entry.split("@")[0]
        base = (CONFIG_DIR / name[1:] if name.startswith("/") else path.parent / name).with_suffix(".yaml")
        if base.is_file():
            merged = OmegaConf.merge(merged, option_defaults(base))
    values = OmegaConf.to_container(OmegaConf.merge(merged, own), resolve=False)
    return values if isinstance(values, dict) else {}


def _against(node: DictConfig, defaults: dict[str, Any], prefix: str) -> Iterator[str]:
    for key, default in defaults.items():
        if key == "defaults" or key not in node:
            continue
        value = OmegaConf.select(node, str(key), default=None, throw_on_missing=False)
        name = f"{prefix}.{key}"
        if isinstance(default, dict) and isinstance(value, DictConfig):
            yield from _against(value, default, name)
        elif value is None or isinstance(value, DictConfig) or value in ALSO_ACCEPTED.get(str(key), ()):
            continue
        elif isinstance(default, bool) and not isinstance(value, bool):
            yield f"{name}={value!r} has the wrong type: expected true or false"
        elif is_number(default) and OmegaConf.is_list(value) and str(key) in PER_DIMENSION:
            if not all(is_number(v) for v in value):
                yield f"{name}={OmegaConf.to_container(value)!r} has the wrong type: expected numbers"
        elif is_number(default) and not is_number(value):
            yield f"{name}={value!r} has the wrong type: expected a number"


#: nodes lossbench reads key by key (no ``_target_`` takes their keys as arguments), with the keys it reads
READ_BY_KEY = {
    "optim": ("optimizer", "scheduler", "scheduler_interval"),
    "monitor": ("metric", "mode"),
    "nonfinite_check": ("every_n_steps",),
    "extras": ("print_config",),
}


def added_key_problems(cfg: DictConfig) -> Iterator[str]:
    """A key added on the command line (``+foo=1``) that nothing reads (a misspelt or misplaced key): at the
    top level, neither a key of ``train.yaml`` nor a chosen config group; directly under a node read key by
    key (:data:`READ_BY_KEY`: ``+optim.lr=0.1``), a key it does not read, named with the one likely meant."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    known = {*option_defaults(CONFIG_DIR / "train.yaml"), *hc.runtime.choices.keys(), "hydra"}
    for override in override_list(hc.overrides.task):
        key = str(override).split("=", 1)[0]
        if key.startswith("+") and "." not in key and key.lstrip("+") not in known:
            yield (
                f"{override}: {key.lstrip('+')} is not a config key, and nothing would read it; a group's "
                "key goes under its group (e.g. trainer.max_epochs=5, +loss.label_smoothing=0.1)"
            )
        top, _, leaf = key.lstrip("+").partition(".")
        added = key.startswith("+") and not key.startswith("++")  # ++ may set a key the node has (and reads)
        if added and leaf and "." not in leaf and leaf not in READ_BY_KEY.get(top, (leaf,)):
            read = [f"{top}.{k}" for k in READ_BY_KEY[top]]
            node = OmegaConf.to_container(cfg[top], resolve=False) if top in cfg else {}
            keys = [*read, *(k for k in leaf_keys(node, top) if k not in read and k != f"{top}.{leaf}")]
            close = difflib.get_close_matches(leaf, [k.rsplit(".", 1)[-1] for k in keys], n=1)
            meant = next((k for k in keys if close and k.rsplit(".", 1)[-1] == close[0]), None)
            hint = f"did you mean {meant}?" if meant else f"lossbench reads {', '.join(read)}"
            yield f"{override}: nothing reads {top}.{leaf}: {hint}"


def leaf_keys(node: Any, prefix: str) -> list[str]:
    """The dotted paths of the values in ``node`` (a container: ``optim.optimizer.lr``, ...)."""
    if not isinstance(node, dict):
        return [prefix]
    return [path for key, value in node.items() for path in leaf_keys(value, f"{prefix}.{key}")]


def trainer_problems(cfg: DictConfig) -> Iterator[str]:
    """The Trainer's optimization options and the seeds: values torch or Lightning reject mid-run (or
    never)."""
    trainer = cfg.get("trainer") or {}
    clip = trainer.get("gradient_clip_val") or 0.0
    yield from problem(lambda: check_range("trainer.gradient_clip_val", clip, 0.0))
    if trainer.get("gradient_clip_algorithm") is not None:
        algorithm = trainer.gradient_clip_algorithm
        yield from problem(
            lambda: check_choice("trainer.gradient_clip_algorithm", algorithm, ("norm", "value"))
        )
    accumulate = trainer.get("accumulate_grad_batches", 1)
    if isinstance(accumulate, int):
        yield from problem(lambda: check_range("trainer.accumulate_grad_batches", accumulate, 1))
    epochs = trainer.get("max_epochs")
    if isinstance(epochs, int) and (trainer.get("max_steps") or -1) == -1:  # 0 "finishes" an untrained model
        yield from problem(lambda: check_range("trainer.max_epochs", epochs, 1))
    lr = OmegaConf.select(cfg, "optim.optimizer.lr", default=None, throw_on_missing=False)
    if is_number(lr):
        yield from problem(lambda: check_range("optim.optimizer.lr", lr, 0.0, low_inclusive=False))
    for key in ("seed", "data_seed"):
        value = cfg.get(key, 0)
        if isinstance(value, int) and not isinstance(
            value, bool
        ):  # the range torch's and NumPy's seeding take
            yield from problem(lambda key=key, value=value: check_range(key, value, 0, 2**32 - 1))


def accelerator_problems(cfg: DictConfig) -> Iterator[str]:
    """A GPU asked for where none is visible; float16 mixed precision on a CPU (Lightning trains in
    bfloat16 instead, while the run's config says float16)."""
    accelerator = str((cfg.get("trainer") or {}).get("accelerator", "cpu"))
    precision = str((cfg.get("trainer") or {}).get("precision", "32-true"))
    if accelerator == "cpu" and precision in ("16", "16-mixed"):
        yield (
            f"trainer.precision={precision} needs a GPU (float16 autocast is not supported on a CPU): use "
            "trainer.precision=bf16-mixed or 32-true"
        )
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            name = OmegaConf.select(cfg, "hydra.runtime.choices.trainer", default=None) or chosen("trainer")
            yield (
                f"trainer={name} needs a CUDA GPU (trainer.accelerator={accelerator}) but none "
                "is visible: use trainer=cpu, or trainer=ddp_cpu for the DDP code path on CPU"
            )


def _device_count(devices: Any, accelerator: Any) -> int:
    """How many devices a Lightning ``devices`` value asks for (``-1``/``auto``: what is visible)."""
    if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:
            return len([d for d in text.split(",") if d.strip()])
        devices = -1 if text == "auto" else int(text)
    if devices is None or devices == -1:
        if str(accelerator) in ("gpu", "cuda", "auto"):
            import torch

            return torch.cuda.device_count()
        return 1 if devices is None else os.cpu_count() or 1
    return int(devices)


def _launched_externally() -> bool:
    """SLURM (``srun``) or torchrun already started one process per device: Lightning relaunches nothing."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect()


def ddp_in_multirun_problems(trainer_cfg: DictConfig | None) -> list[str]:
    """A DDP strategy whose launcher would re-run a multirun's command line (the whole sweep) per process."""
    if trainer_cfg is None:
        return []
    strategy = trainer_cfg.get("strategy", "auto")
    if not isinstance(strategy, str):  # an instantiated strategy object: the user knows what they do
        return []
    name = strategy.lower()
    if not name.startswith(_RELAUNCHING) or any(k in name for k in _IN_PROCESS):
        return []
    devices = _device_count(trainer_cfg.get("devices", "auto"), trainer_cfg.get("accelerator", "auto"))
    processes = devices * int(trainer_cfg.get("num_nodes", 1) or 1)
    if processes <= 1 or _launched_externally():
        return []
    return [
        f"trainer.strategy={strategy} with {processes} processes cannot run inside a Hydra multirun: "
        "Lightning's DDP launcher re-runs the command line in each child process, i.e. the whole sweep. "
        "Use trainer.strategy=ddp_spawn for a sweep on one machine (workers are spawned inside each job), "
        "or hydra/launcher=slurm with hydra.launcher.tasks_per_node=<devices> (srun starts one process per "
        "device), or loop over single runs (python train.py trainer=ddp loss=...)"
    ]


def check_ddp_in_multirun(trainer_cfg: DictConfig | None) -> None:
    """Raise :class:`ConfigError` when ``trainer_cfg`` would make Lightning re-run a multirun's script."""
    raise_problems(ddp_in_multirun_problems(trainer_cfg))
