"""A run's command-line overrides: which ones make it what it is, and when two lists set the same.

A run is identified by its overrides (Hydra's ``overrides.task``): resuming, continuing a sweep, grouping a
report's variants and reusing a tuning search all compare them with these helpers.
"""

from __future__ import annotations

from typing import Any


def plain_overrides(overrides: list[str]) -> list[str]:
    """The overrides that make a run what it is: sorted, without ``resume`` and the run dir."""
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(("resume=", "hydra.run.dir=")))


def same_run_overrides(stored: list[str] | None, overrides: list[str]) -> bool:
    """Whether a run's ``stored`` overrides (its record's or checkpoint's; None: not recorded) are
    ``overrides``, as :func:`plain_overrides` reads them."""
    return stored is None or plain_overrides(list(stored)) == plain_overrides(overrides)


def override_difference(given: list[str], other: list[str]) -> str:
    """How ``other`` differs from ``given`` (:func:`plain_overrides` of each), e.g. ``with loss=ce,
    without loss=focal``."""
    a, b = set(plain_overrides(given)), set(plain_overrides(other))
    parts = [f"{word} {' '.join(sorted(x))}" for word, x in (("with", b - a), ("without", a - b)) if x]
    return ", ".join(parts) or "with the same overrides"


def same_overrides(a: list[str], b: list[str]) -> bool:
    """Whether two override lists set the same: in any order when each key is set once (Hydra applies
    overrides of different keys alike in any order), else in the same order."""
    keys = [override_key(o) for o in a]
    if len(set(keys)) == len(keys):
        return sorted(a) == sorted(b)
    return list(a) == list(b)


def override_key(override: str) -> str:
    """The key a command-line override sets (``+loss.gamma=2``: ``loss.gamma``; ``loss=focal``: ``loss``)."""
    return override.split("=", 1)[0].lstrip("+~")


def sets_in(key: str, node: str) -> bool:
    """Whether an override of ``key`` sets ``node`` or a key under it (``loss.gamma``, ``loss``: ``loss``)."""
    return key == node or key.startswith(node + ".")


def swept_keys_of(overrides: list[str]) -> set[str]:
    """The keys (or config groups) that sweep syntax gives several values (``loss=ce,focal``: ``loss``);
    Hydra's parser raises on an override it cannot read."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides])
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def override_list(node: Any) -> list[str]:
    """The overrides of a Hydra config's ``overrides.task`` (or ``overrides.hydra``) list as written: one
    holding an interpolation (``tags=[${loss_name}]``, as ``multirun.yaml`` keeps it) stays text, never
    resolved against a config it was not written for; none for None."""
    from omegaconf import OmegaConf

    if node is None:
        return []
    return [
        str(o) for o in (OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node)
    ]


def run_overrides() -> list[str]:
    """The running Hydra job's command-line overrides (none outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    return override_list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
