"""The jobs of a sweep that Hydra's basic sweeper runs, enumerated from its ``multirun.yaml``: each job's
overrides, so that a job that never wrote its run dir (a sweep stopped before it) is still named by what
it is (``loss=focal seed=2``), in the sweep's table and in ``lossbench compare``.

The enumeration is the basic sweeper's, through Hydra's public override parser: the preset's
``hydra.sweeper.params`` first, then the command line's overrides (a key given in both keeps its first
place and takes the command line's values), each key's values in order, and every combination with the
last key varying fastest (``itertools.product``). Job ``n`` is the ``n``-th combination.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from lossbench.overrides import override_list
from lossbench.run_dir import saved_sweep


def basic_sweep_values(hydra_node: Any) -> list[list[str]] | None:
    """Per key, in the basic sweeper's order, the overrides its jobs take (``["loss=ce", "loss=focal"]``)
    of the sweep whose ``hydra`` node (of ``multirun.yaml``) is ``hydra_node``; None for another sweeper,
    or a sweep the basic sweeper cannot enumerate (an interval, a glob of config options)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if hydra_node is None or "BasicSweeper" not in str(hydra_node.sweeper.get("_target_", "")):
        return None
    params = [f"{k}={v}" for k, v in (hydra_node.sweeper.get("params") or {}).items()]
    values: dict[str, list[str]] = {}
    try:
        for override in OverridesParser.create().parse_overrides(
            [*params, *override_list(hydra_node.overrides.task)]
        ):
            key = override.get_key_element()
            if not override.is_sweep_override():
                values[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                values[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                return None
    except Exception:  # an override the parser cannot read without the sweep's config loader
        return None
    return list(values.values())


def basic_sweep_jobs(hydra_node: Any) -> list[list[str]] | None:
    """Every job's overrides, in job order (:func:`basic_sweep_values`, combined)."""
    values = basic_sweep_values(hydra_node)
    return None if values is None else [list(job) for job in itertools.product(*values)]


def planned_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """:func:`basic_sweep_jobs` of the sweep in ``sweep_dir`` (None without its ``multirun.yaml``)."""
    return basic_sweep_jobs(saved_sweep(sweep_dir))


def planned_size(sweep_dir: Path) -> int | None:
    """How many jobs :func:`planned_jobs` holds, counted without listing them (every job's line asks)."""
    values = basic_sweep_values(saved_sweep(sweep_dir))
    return None if values is None else math.prod(len(v) for v in values)
