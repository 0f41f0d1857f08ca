"""A user's own loss, model, data module and configs train without editing lossbench, also from the wheel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lossbench.errors import ConfigError
from lossbench.task import check_data_contract
from tests.conftest import ROOT
from tests.user_package import write_user_package


@pytest.fixture
def user(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The user's config dir and an environment that puts their package on the path."""
    src, conf = write_user_package(tmp_path / "user")
    return conf, {"PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}


def test_contract_check_names_every_missing_part():
    class Empty:
        task = "classification"

    with pytest.raises(ConfigError) as info:
        check_data_contract(Empty(), "data=x")
    msg = str(info.value)
    for part in (
        "train_dataloader",
        "val_dataloader",
        "test_dataloader",
        "input_shape",
        "num_classes",
        "class_counts",
    ):
        assert part in msg
    Empty.task = "ranking"
    with pytest.raises(ConfigError, match="task \\(one of classification, regression, multilabel\\)"):
        check_data_contract(Empty())
