"""The keys of an instantiated node are arguments of its ``_target_``, named before anything is built:
``+trainer.max_epoch=2`` with the argument it was likely meant to be (the Trainer would refuse it with a
``TypeError`` only once the data and the model are built and the loggers started), ``+loss.foo=1`` with the
options the loss takes (the optimizer's would otherwise fail only in ``fit``); and a callback that needs
an argument the Trainer gets elsewhere (``LearningRateMonitor``, a logger) without it."""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
import types
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench.config import chosen
from lossbench.errors import ConfigError

#: keys of a node that Hydra's ``instantiate`` reads itself
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def located(path: str) -> Any:
    """The object at the import path ``path`` (``pkg.module.Name``, ``pkg.module.Outer.Inner``), as a
    ``_target_`` names it, found as Hydra finds it: from the first module, each part an attribute where
    there is one (a class a package imports from its module of the same name), else a submodule to import;
    an ``ImportError`` naming the part that is missing. (Hydra's ``get_object`` logs its failure at ERROR
    level before raising it: a command given a bad ``_target_`` says so once, in its own error.) A module
    that exists but fails to import raises its own error."""
    parts = path.split(".")
    if not all(parts):
        raise ImportError(f"{path!r} is not an import path (package.module.Name)")
    try:
        found: Any = importlib.import_module(parts[0])
    except ModuleNotFoundError as err:
        if err.name != parts[0]:
            raise  # the module is there; something it imports is not
        raise ImportError(f"there is no module named {parts[0]!r}") from None
    for i, attr in enumerate(parts[1:], start=1):
        if hasattr(found, attr):
            found = getattr(found, attr)
            continue
        name = ".".join(parts[: i + 1])
        if isinstance(found, types.ModuleType):
            try:
                found = importlib.import_module(name)
                continue
            except ModuleNotFoundError as err:
                if err.name != name:
                    raise
        raise ImportError(f"{'.'.join(parts[:i])} has no attribute {attr!r}")
    return found


def accepted_arguments(target: str) -> list[str] | None:
    """The keyword arguments ``target`` (a class or function by its import path) takes, in its signature's
    order; ``None`` when it cannot be imported (named when it is built), or takes any (``**kwargs``). A
    class whose ``__init__`` passes ``**kwargs`` on to its bases takes theirs too (lossbench's checkpoint
    and progress bar, subclasses of Lightning's), up to a base that takes no ``**kwargs``."""
    try:
        obj: Any = located(target)
    except Exception:  # noqa: BLE001 - whatever importing the target raised
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names: list[str] = []
    for owner in obj.__mro__ if inspect.isclass(obj) else (obj,):
        if owner is object:  # every class's last base: its (*args, **kwargs) take nothing
            return names
        if inspect.isclass(owner) and "__init__" not in vars(owner):
            continue  # its __init__ is a base's, read at that base
        try:
            parameters = inspect.signature(owner.__init__ if inspect.isclass(owner) else owner).parameters
        except (TypeError, ValueError):
            return None
        names += [n for n, p in parameters.items() if p.kind in keyword and n != "self" and n not in names]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return names
    return None


def unknown_argument_problems(cfg: DictConfig) -> Iterator[str]:
    """A key of ``trainer`` or of a callback that its class does not take, with the closest one it does.
    Reading a class's arguments imports it (Lightning, torch): the first, light check of a command, before
    torch loads, leaves this to the check :func:`lossbench.run.run` makes once torch is loaded."""
    if "torch" not in sys.modules:
        return
    nodes = [("trainer", cfg.get("trainer"))]
    nodes += [(f"callbacks.{name}", node) for name, node in (cfg.get("callbacks") or {}).items()]
    for where, node in nodes:
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        accepted = accepted_arguments(str(node._target_))
        if accepted is None:
            continue
        for key in sorted(str(k) for k in node if str(k) not in HYDRA_KEYS.union(accepted)):
            hint = argument_hint(where, key, accepted)
            yield f"{where}.{key} is not an argument of {node._target_}: {hint}"


def argument_hint(where: str, key: str, accepted: list[str]) -> str:
    """The fix for ``where.key``, which its class does not take: the closest of ``accepted``, or its
    removal."""
    close = difflib.get_close_matches(key, accepted, n=1)
    return f"did you mean {where}.{close[0]}?" if close else f"remove it (~{where}.{key})"


def added_data_key(node: DictConfig, option: str, cause: BaseException) -> str | None:
    """For a data module of the option ``data=<option>`` refusing a keyword argument (``cause``) that the
    option's file does not hold (added on the command line: ``+data.batchsize=32``), the problem, with the
    argument it was likely meant to be; None for a key of the option's own (its ``_target_`` was changed)."""
    from lossbench.checks import option_defaults
    from lossbench.config import CONFIG_DIR

    found = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    path = CONFIG_DIR / "data" / f"{option}.yaml"
    if found is None or not path.is_file() or found[1] in option_defaults(path):
        return None
    key, target = found[1], str(node.get("_target_"))
    accepted = accepted_arguments(target) or [str(k) for k in node if not str(k).startswith("_")]
    return (
        f"data.{key} is not an argument of {target} (data={option}): {argument_hint('data', key, accepted)}"
    )


def logger_needed_problems(cfg: DictConfig) -> Iterator[str]:
    """A callback that writes only to the loggers (Lightning's ``LearningRateMonitor``) with no logger, which
    Lightning refuses once training starts."""
    loggers = [v for v in (cfg.get("logger") or {}).values() if v is not None]
    callbacks = cfg.get("callbacks") or {}
    for name, node in callbacks.items():
        target = str(node.get("_target_", "")) if isinstance(node, DictConfig) else ""
        if target.endswith(".LearningRateMonitor") and not loggers:
            yield (
                f"callbacks.{name} logs the learning rate to the loggers, and this run has none "
                "(logger=none, as in the debug presets): add one, e.g. logger=csv, or leave the callback "
                "out (callbacks=default)"
            )


#: the config nodes whose keys are keyword arguments of their ``_target_``, each with the arguments that
#: lossbench passes itself (or consumes, as a model's :data:`~lossbench.models.BUILD_OPTIONS`)
OPTION_NODES = {
    "loss": ("class_counts",),
    "model": ("input_shape", "num_outputs"),
    "optim.optimizer": ("params",),
    "optim.scheduler": ("optimizer",),
}


def check_options(cfg: DictConfig) -> None:
    """Name a key of the loss, model, optimizer or schedule config that its ``_target_`` does not take
    (``+loss.foo=1``), with the options it does take."""
    from lossbench.models import BUILD_OPTIONS  # loads torch: the config checks stay light without it

    for group, given in OPTION_NODES.items():
        node = OmegaConf.select(cfg, group)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        accepted = accepted_arguments(str(node._target_))
        if accepted is None:
            continue
        given = (*given, *BUILD_OPTIONS) if group == "model" else given
        for key in map(str, node):
            if not key.startswith("_") and key not in accepted and key not in given:
                options = ", ".join(n for n in accepted if n not in given) or "nothing"
                choice = group.split(".")[0]
                raise ConfigError(
                    f"{group}.{key} is not an option of {choice}={chosen(choice)} ({node._target_} takes "
                    f"{options}): drop the override that sets {group}.{key}, or choose a {choice}=... whose "
                    "target takes it"
                )
