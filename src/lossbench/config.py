"""Where the Hydra configs live, what their groups offer, and what the running Hydra app chose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from lossbench.errors import ConfigError
from lossbench.overrides import override_key, override_list
from lossbench.task import Task

#: the shipped configs, ``lossbench/conf/`` inside the package (a user adds their own directories with
#: Hydra's ``hydra.searchpath=[file://./my_conf]``)
CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def group_options(group: str) -> list[str]:
    """Option names of a config group, e.g. ``group_options("loss") == ["bce", "ce", ...]``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


#: the ``loss=`` option that stands for the task's baseline loss (``conf/loss/auto.yaml``)
AUTO_LOSS = "auto"


def loss_options() -> list[str]:
    """The ``loss=`` options that name a loss (every option but :data:`AUTO_LOSS`)."""
    return [name for name in group_options("loss") if name != AUTO_LOSS]


def check_known_losses(names: list[str]) -> None:
    """Raise a :class:`~lossbench.errors.ConfigError` naming each of ``names`` (``--loss``) that is not a
    ``loss=`` option, with the options to choose from."""
    known = group_options("loss")
    if unknown := [name for name in names if name not in known]:
        raise ConfigError(f"--loss {','.join(unknown)}: no such loss; choose from {', '.join(known)}")


def check_losses_serve(names: list[str], task: Task) -> None:
    """Raise a :class:`~lossbench.errors.ConfigError` naming each of ``names`` (``--loss``) whose loss
    cannot train on ``task`` data, with the losses that can."""
    served = losses_for_task(task)
    if wrong := [name for name in names if name not in served]:
        raise ConfigError(
            f"--loss {','.join(wrong)} cannot train on this {Task(task).value} data set: choose from "
            f"{', '.join(sorted(served))}"
        )


def losses_for_task(task: Task) -> list[str]:
    """The ``loss=`` options whose loss serves ``task``.

    Each config is instantiated as it stands (without class counts, so class-count losses take their
    balanced fallback) and the instance's ``tasks`` decide, since they may depend on the arguments (the
    class-balanced loss serves multi-label with a sigmoid base only).
    """
    names = []
    for name in loss_options():
        cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{name}.yaml")
        if cfg.get("_target_") and Task(task) in instantiate(cfg).tasks:
            names.append(name)
    return names


def chosen(group: str, default: str = "?") -> str:
    """The option chosen for ``group`` in the running Hydra app (``default`` outside one)."""
    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get(group, default)
    return default


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (``python train.py -m ...``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def launcher_of(config: Any) -> Any:
    """The launcher config of a sweep's ``config`` (its ``hydra.launcher``; empty without one)."""
    return OmegaConf.select(config, "hydra.launcher") or {}


def compose_run(overrides: list[str], output_dir: str | Path | None = None) -> DictConfig:
    """``train.yaml`` composed with ``overrides`` as ``python train.py <overrides>`` composes it.

    The one way lossbench composes a config outside ``hydra.main`` (``tune``, ``advise``, ``lossbench-eval``,
    the tests). With ``output_dir`` the result is what a run's task function sees: Hydra's own node is
    registered (``${hydra:...}`` interpolations and :func:`chosen` answer as in a run) and removed from the
    config, and ``paths.output_dir`` is ``output_dir``. Without it, the Hydra node is kept.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return cfg if output_dir is None else as_run(cfg, output_dir)


def hydra_interpolations(node: Any, prefix: str = "") -> list[str]:
    """The keys (dotted) of the values outside ``hydra`` that interpolate Hydra's own config
    (``${hydra:runtime.choices.loss}``), in a config as :meth:`OmegaConf.to_container` gives it unresolved."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    keys = []
    for name, value in items:
        key = f"{prefix}{name}"
        if key == "hydra":
            continue
        if isinstance(value, str) and "${hydra:" in value:
            keys.append(key)
        else:
            keys += hydra_interpolations(value, f"{key}.")
    return keys


def as_run(cfg: DictConfig, output_dir: str | Path) -> DictConfig:
    """A composed config (with its Hydra node) as a run's task function sees it, writing to ``output_dir``
    (see :func:`compose_run`). Its ``${hydra:...}`` values are resolved now: Hydra's global config is
    that of the config composed last, so a config kept while others are composed (a packed group's
    runs, a sweep's jobs) keeps its own choices."""
    HydraConfig.instance().set_config(cfg)
    given = {
        override_key(o) for o in override_list(OmegaConf.select(cfg, "hydra.overrides.task", default=None))
    }
    with open_dict(cfg):
        for key in hydra_interpolations(OmegaConf.to_container(cfg, resolve=False)):
            OmegaConf.update(cfg, key, OmegaConf.select(cfg, key), merge=False)
        del cfg.hydra  # as in a Hydra app's task function
        if "paths.root_dir" not in given:  # as ${hydra:runtime.cwd} is in a Hydra app
            cfg.paths.root_dir = str(Path.cwd())
        cfg.paths.output_dir = str(Path(output_dir).absolute())  # as ${hydra:runtime.output_dir}
    return cfg
