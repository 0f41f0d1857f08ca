"""Whether a search's stored trials can be read: a damaged ``study.db`` or journal file is named in one
line with the fix, before any trial runs, instead of an SQLAlchemy or Optuna traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lossbench.errors import DataError, damaged_file
from lossbench.tune.study import Plan


def damaged(path: Path, why: str) -> DataError:
    return damaged_file(
        path,
        why,
        "it holds this search's trials. Restore it from a copy, or move it away to start the search again "
        "(finished final runs are kept)",
    )


def check_sqlite(path: Path) -> None:
    """Open ``path`` read-only and run SQLite's ``quick_check`` on it."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            result = db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as err:
        raise damaged(path, str(err)) from None
    if not result or result[0] != "ok":
        raise damaged(path, f"SQLite's integrity check says: {result[0] if result else 'nothing'}")


def check_journal(path: Path) -> None:
    """Every complete line of an Optuna journal file is one JSON object (a last line cut off by a kill
    is Optuna's own to skip)."""
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        try:
            if not isinstance(json.loads(line), dict):
                raise ValueError("not an object")
        except ValueError:
            raise damaged(path, f"line {number} is not a journal entry") from None


def check_storage(plan: Plan) -> None:
    """Raise a one-line :class:`DataError` when the plan's local storage file exists and is damaged."""
    url = plan.storage_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.is_file() and path.stat().st_size > 0:
            check_sqlite(path)
    elif url.endswith((".log", ".journal")) and "://" not in url:
        path = Path(url)
        if path.is_file():
            check_journal(path)
