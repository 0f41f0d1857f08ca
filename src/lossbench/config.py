"""Where the Hydra configs live and what their groups offer."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lossbench.errors import ConfigError
from lossbench.task import Task

#: the shipped configs, ``lossbench/conf/`` inside the package (a user adds their own directories with
#: Hydra's ``hydra.searchpath=[file://./my_conf]``)
CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def group_options(group: str) -> list[str]:
    """Option names of a config group, e.g. ``group_options("loss") == ["bce", "ce", ...]``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def losses_for_task(task: Task) -> list[str]:
    """The ``loss=`` options whose loss serves ``task``.

    Each config is instantiated as it stands (without class counts, so class-count losses take their
    balanced fallback) and the instance's ``tasks`` decide, since they may depend on the arguments (the
    class-balanced loss serves multi-label with a sigmoid base only).
    """
    names = []
    for name in group_options("loss"):
        cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
        if cfg.get("_target_") and Task(task) in instantiate(cfg).tasks:
            names.append(name)
    return names


def chosen(group: str, default: str = "?") -> str:
    """The option chosen for ``group`` in the running Hydra app (``default`` outside one)."""
    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get(group, default)
    return default


#: config keys whose type YAML cannot enforce, checked before a run starts
TYPED_KEYS: dict[str, tuple[type, ...]] = {
    "seed": (int,),
    "data_seed": (int,),
    "trainer.max_epochs": (int,),
    "data.batch_size": (int,),
    "nonfinite_check.every_n_steps": (int,),
    "trainer.accumulate_grad_batches": (int,),
    "optim.optimizer.lr": (int, float),
}


def check_required(cfg: DictConfig) -> None:
    """Raise a :class:`ConfigError` naming every required key (``???`` in its YAML) left unset."""
    missing = sorted(str(k) for k in OmegaConf.missing_keys(cfg))
    if missing:
        example = " ".join(f"{k}=..." for k in missing)
        raise ConfigError(f"{', '.join(missing)} must be set for this config: add {example} to the command")


def check_types(cfg: DictConfig) -> None:
    """Raise a :class:`ConfigError` naming the key when an override has the wrong type (``seed=abc``)."""
    for key, types in TYPED_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            expected = "an integer" if types == (int,) else "a number"
            raise ConfigError(f"{key}={value!r} has the wrong type: expected {expected}")
