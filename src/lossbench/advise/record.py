"""``DIR/advise.json``: the study ``lossbench advise`` ran in ``DIR`` (its overrides, losses, metric and
data), its pilot and its plan, so that the same command again continues it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lossbench.advise.budget import BudgetPlan
from lossbench.errors import ConfigError, damaged_file
from lossbench.overrides import same_overrides


def read_plan(record: Path) -> dict[str, Any]:
    """``advise.json`` as stored (empty when absent), or a one-line error naming it when it is damaged."""
    if not record.is_file():
        return {}
    try:
        saved = json.loads(record.read_text())
    except ValueError as err:
        saved = err
    if not isinstance(saved, dict):
        raise damaged_file(
            record,
            f"not the plan's JSON: {saved}",
            "it records the study and its pilot; delete it to plan the study again in this --out "
            "(finished trials and final runs are kept)",
        )
    return saved


def check_resume(saved: dict[str, Any], wanted: dict[str, Any], record: Path) -> None:
    """A rerun in the same ``--out`` must ask for the same study as ``advise.json`` records."""
    flags = {"overrides": "the overrides", "losses": "--loss", "metric": "--metric"}
    if saved.get("data") is not None and saved.get("data") != wanted.get("data"):
        raise ConfigError(
            f"{record} records a study on other data (the files data.path or data.root name have changed "
            "since): rerun it on the data it ran on, or give another --out"
        )
    changed = [k for k in flags if saved.get(k) != wanted[k]]
    if "overrides" in changed and same_overrides(saved.get("overrides") or [], wanted["overrides"]):
        changed.remove("overrides")  # the same overrides in another order
    if changed:
        was = "; ".join(f"{flags[k]}: {saved.get(k)}" for k in changed)
        raise ConfigError(
            f"{record} records another study ({was}): rerun with those to continue it, or give another --out"
        )


def write_plan(record: Path, saved: dict[str, Any], plan: BudgetPlan, budget_s: float) -> BudgetPlan:
    """Record ``plan``, made for ``budget_s``, in ``saved`` and write it to ``record``; returns ``plan``."""
    saved["plan"] = {**asdict(plan), "budget_s": budget_s}
    record.write_text(json.dumps(saved, indent=2))
    return plan
