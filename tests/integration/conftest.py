"""Every test under tests/integration/ carries the ``integration`` marker, so that ``-m`` selects by tier:
``make test-fast`` runs ``-m "not integration or smoke"`` (the unit tier and the one smoke run)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
