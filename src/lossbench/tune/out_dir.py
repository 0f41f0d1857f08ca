"""Which command's search an ``--out`` holds: ``lossbench tune`` and ``lossbench advise`` write the same
studies and runs (``study.db``, ``trials/``, ``final/``) but record their search apart, tune in
``plan.json``, advise in ``advise.json`` beside its ``pilot/`` run. A command continues only its own
search: the other's trials and final runs were made with other overrides and budgets."""

from __future__ import annotations

from pathlib import Path

from lossbench.errors import ConfigError

#: what ``lossbench tune`` records its search in
TUNE_RECORD = "plan.json"
#: ``lossbench advise``'s record of its study
ADVISE_RECORD = "advise.json"
#: the run dir of ``lossbench advise``'s pilot (a timing run of the baseline)
PILOT_DIR = "pilot"
#: what ``lossbench advise`` writes before any trial: its record and its pilot's run dir
ADVISE_MARKS = (ADVISE_RECORD, PILOT_DIR)
#: the studies and runs either command writes
SEARCH_FILES = ("study.db", "trials", "final")


def present(out: Path, names: tuple[str, ...]) -> list[str]:
    """The ``names`` that exist in ``out``."""
    return [name for name in names if (out / name).exists()]


def check_tune_out(out: Path) -> None:
    """Refuse a ``lossbench tune --out`` that holds a ``lossbench advise`` study: without ``plan.json`` and
    with advise's record or pilot. (Studies and runs with neither record are tune's own once its damaged
    ``plan.json`` was deleted, as that error tells.)"""
    if (out / TUNE_RECORD).exists() or not (found := present(out, ADVISE_MARKS)):
        return
    raise ConfigError(
        f"--out {out} holds a lossbench advise study ({', '.join(found + present(out, SEARCH_FILES))}), "
        "not a tune search: use another --out"
    )


def check_advise_out(out: Path) -> None:
    """Refuse a ``lossbench advise --out`` that holds another command's search: ``lossbench tune``'s
    ``plan.json``, or studies and runs without advise's record or pilot."""
    if (out / TUNE_RECORD).exists():
        raise ConfigError(
            f"--out {out} holds a lossbench tune search ({TUNE_RECORD}), not an advise study: use another "
            "--out"
        )
    if present(out, ADVISE_MARKS) or not (found := present(out, SEARCH_FILES)):
        return
    raise ConfigError(
        f"--out {out} holds another command's search ({', '.join(found)}) without advise.json: use another "
        "--out"
    )
