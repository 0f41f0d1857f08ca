"""The keys of an instantiated node are arguments of its ``_target_``: ``+trainer.max_epoch=2`` is named,
with the argument it was likely meant to be, before anything is built (the Trainer would refuse it with a
``TypeError`` only once the data and the model are built and the loggers started)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig

#: keys of a node that Hydra's ``instantiate`` reads itself
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def accepted_arguments(target: str) -> list[str] | None:
    """The keyword arguments ``target`` (a class or function by its import path) takes, in its signature's
    order; ``None`` when it cannot be imported (named when it is built), or takes any (``**kwargs``)."""
    try:
        obj: Any = get_object(target)
        parameters = inspect.signature(obj).parameters.values()
    except Exception:  # noqa: BLE001 - whatever importing the target raised
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword]


def unknown_argument_problems(cfg: DictConfig) -> Iterator[str]:
    """A key of ``trainer`` or of a callback that its class does not take, with the closest one it does."""
    nodes = [("trainer", cfg.get("trainer"))]
    nodes += [(f"callbacks.{name}", node) for name, node in (cfg.get("callbacks") or {}).items()]
    for where, node in nodes:
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        accepted = accepted_arguments(str(node._target_))
        if accepted is None:
            continue
        for key in sorted(str(k) for k in node if str(k) not in HYDRA_KEYS.union(accepted)):
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean {where}.{close[0]}?" if close else f"remove it (~{where}.{key})"
            yield f"{where}.{key} is not an argument of {node._target_}: {hint}"
