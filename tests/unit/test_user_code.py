"""A user's own loss, model, data module and configs train without editing lossbench, also from the wheel."""

from __future__ import annotations

import pytest

from lossbench.errors import ConfigError
from lossbench.task import check_data_contract


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
