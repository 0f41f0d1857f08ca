"""Search spaces of ``lossbench tune``: ``spaces/optim.yaml`` (shared) + ``spaces/<loss>.yaml``.

The space files sit next to this module, outside Hydra's config directory: they are not config groups
of ``train.py`` (nothing composes them), only read here.

Each key of a space file is a config override (``loss.gamma``), its value how to sample it::

    loss.gamma: {low: 0.0, high: 5.0}             # uniform float
    loss.delta: {low: 0.05, high: 5.0, log: true} # log-uniform
    loss.beta: {choices: [0.9, 0.99, 0.999]}      # categorical
    model.depth: {low: 2, high: 6, int: true}     # integer

Every loss is tuned over the shared space plus its own, with the same number of trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf

from lossbench.errors import ConfigError

#: the directory of the space files (packaged with lossbench)
SPACES_DIR = Path(__file__).resolve().parent / "spaces"
#: the space every loss shares
SHARED = "optim"


@dataclass(frozen=True)
class Param:
    """One searched override."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)


def _read(path: Path) -> list[Param]:
    spec = OmegaConf.to_container(OmegaConf.load(path)) or {}
    params = []
    for key, how in spec.items():
        how = dict(how or {})
        if "choices" in how:
            params.append(Param(key, choices=tuple(how["choices"])))
            continue
        if "low" not in how or "high" not in how or how["low"] >= how["high"]:
            raise ConfigError(f"{path}: {key} needs low < high (or choices: [...]), got {how}")
        params.append(Param(key, how["low"], how["high"], bool(how.get("log")), bool(how.get("int"))))
    return params


def space_file(loss: str, key: str, spaces_dir: Path = SPACES_DIR) -> Path | None:
    """The file of ``loss``'s search space that searches ``key``: the shared one or the loss's own."""
    for path in (spaces_dir / f"{SHARED}.yaml", spaces_dir / f"{loss}.yaml"):
        if path.is_file() and any(param.key == key for param in _read(path)):
            return path
    return None


def search_space(loss: str, spaces_dir: Path = SPACES_DIR) -> list[Param]:
    """The shared space plus ``loss``'s own (none when it has no ``<loss>.yaml``)."""
    params = _read(spaces_dir / f"{SHARED}.yaml")
    own = spaces_dir / f"{loss}.yaml"
    if own.is_file():
        params += _read(own)
    return params


def overrides(params: dict[str, Any]) -> list[str]:
    """Sampled values as Hydra overrides (``loss.gamma=1.5``)."""
    return [
        f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}" for key, value in params.items()
    ]
