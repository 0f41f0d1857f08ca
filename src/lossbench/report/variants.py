"""The labels the report compares runs by: each run's setting (``group``) and variant, from the overrides
that vary across the runs, and a tuned configuration told apart from its loss's other runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lossbench.overrides import override_key
from lossbench.report.collect import SUPERSEDED, TRIAL, ReportRun, is_condition

#: overrides that identify a job's seed or loss rather than its setting
PER_RUN_KEYS = ("seed", "data_seed", "loss")


def assign_variants(runs: list[ReportRun]) -> list[ReportRun]:
    """Label each run: ``group`` = data + the overrides that vary across runs and are not about the loss
    or the seed; ``variant`` = loss name + its varying ``loss.*`` overrides. Runs of one group are compared;
    the runs of one variant are its seeds."""
    all_lists = [r.overrides for r in runs if r.overrides]
    common = set(all_lists[0]).intersection(*map(set, all_lists[1:])) if all_lists else set()
    epochs = {id(r): ((r.record.config or {}).get("trainer") or {}).get("max_epochs") for r in runs}
    epochs_vary = len({e for e in epochs.values() if e is not None}) > 1  # a preset (+sweep=smoke) sets them
    for r in runs:
        varying = [
            o
            for o in r.overrides or []
            if o not in common and override_key(o) not in PER_RUN_KEYS and is_condition(override_key(o))
        ]
        loss_opts = [o for o in varying if override_key(o).startswith("loss.")]
        setting = [o for o in varying if not override_key(o).startswith("loss.")]
        if (
            epochs_vary
            and epochs[id(r)] is not None
            and "trainer.max_epochs" not in map(override_key, setting)
        ):
            setting.append(f"trainer.max_epochs={epochs[id(r)]}")
        r.variant = " ".join([r.loss, *loss_opts])
        r.group = " ".join([r.data, *setting])
    label_tuned(runs)
    seen: dict[tuple[str, str, Any], str] = {}
    for r in runs:  # two runs of one setting, variant and replicate: the first counts, the other is listed
        if not r.ok:
            continue
        key = (r.group, r.variant, r.replicate)
        if key in seen:
            r.status, r.error = "duplicate", f"same setting, loss and seed as {seen[key]}: not counted twice"
        else:
            seen[key] = r.run_dir
    for r in runs:  # a failed or stopped start of a run that then finished (W&B keeps both): not a failure
        key = (r.group, r.variant, r.replicate)
        labelled = r.status in ("duplicate", SUPERSEDED)  # by an earlier call on some of these runs
        if not r.ok and not labelled and r.seed is not None and key in seen:
            r.status, r.error = SUPERSEDED, f"{r.status} ({r.error or 'no error'}); {seen[key]} finished it"
    return runs


def label_tuned(runs: list[ReportRun]) -> None:
    """Where a variant's runs were trained with more than one configuration (its own defaults, or the
    parameters ``lossbench tune`` chose in one ``--out`` or another: a final run's record names the tune's
    overrides, not the tuned values), each tuned configuration's runs get a variant of their own, named by
    the tune's folder: ``focal tuned=<out>`` (``#2``, ... when two folders share a name), so runs of
    different parameters are neither pooled nor taken for duplicates."""
    compared = [r for r in runs if r.status != TRIAL]  # a tune's trials are its search, not a configuration
    configs: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for r in compared:
        configs[(r.group, r.variant)].add(r.tuned)
    names: dict[tuple[str, str, str], str] = {}
    for r in compared:
        if r.tuned is None or len(configs[(r.group, r.variant)]) < 2:
            continue
        key = (r.group, r.variant, r.tuned)
        if key not in names:
            label = f"{r.variant} tuned={tune_folder(r.run_dir)}"
            taken = {n for (g, _, _), n in names.items() if g == r.group and n.split("#")[0] == label}
            names[key] = label if not taken else f"{label}#{len(taken) + 1}"
        r.variant = names[key]


def tune_folder(run_dir: str) -> str:
    """The ``--out`` folder's name of a tune's final run (``<out>/final/<loss>/<seed>``)."""
    parents = Path(run_dir).resolve().parents  # final/ce/0 given from inside the tune's folder
    return parents[2].name if len(parents) > 2 else Path(run_dir).name
