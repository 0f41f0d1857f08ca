"""Training keeps Lightning's documented semantics: one Lightning batch is one batch and (without
accumulation) one optimizer step; clipping, accumulation, schedules and limits are the Trainer's own."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_no_source_file_writes_a_private_lightning_attribute():
    """Neither ``trainer.fit_loop`` nor any ``trainer.<...>._private`` is assigned anywhere in ``src/``."""
    pattern = re.compile(r"(trainer|fit_loop|epoch_loop|strategy)(\.\w+)*\._\w+\s*[+\-*/]?=(?!=)")
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        assert "fit_loop" not in text, path
        assert not pattern.search(text), (path, pattern.search(text))
