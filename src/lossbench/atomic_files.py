"""Text files written whole or not at all: the text goes into a temporary file beside the target, fsynced,
which then replaces the target. A kill or a failing write leaves the earlier file as it was (a reader never
sees half of one); a kill can leave the temporary file, a dot-file named after the target."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that ``path`` holds either its earlier content or all of ``text``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "x", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_csv_atomically(path: Path, fields: list[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write a CSV file of the header ``fields`` and ``rows`` (as :class:`csv.DictWriter` writes them) whole
    or not at all; no header at all when there are no ``fields``."""
    text = io.StringIO(newline="")
    if fields:
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return write_text_atomically(path, text.getvalue())
