"""A user's own table trains on the first command: the task, the loss and the checkpoint choice follow
from the data (a wide integer target is regression with MSE; 3% positives pick on balanced accuracy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossbench.run import run
from tests.tables import table


def test_an_integer_target_with_60_values_trains_as_regression_with_no_loss_given(make_cfg, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 3))
    age = 20 + np.argsort(np.argsort(x[:, 0])) * 60 // 1200  # 60 ages, 20 rows each, rising with a
    path = tmp_path / "ages.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "age": age}).to_csv(path, index=False)
    assert len(np.unique(age)) == 60
    record = run(table(make_cfg, path, "data.target=age", "trainer.max_epochs=3", "logger=none"))
    assert record["status"] == "ok" and record["loss"] == "mse"
    assert record["data_info"]["task"] == "regression"
    assert "test/mae" in record["test"] or "test/rmse" in record["test"]


def test_a_table_with_three_percent_positives_picks_its_checkpoint_on_balanced_accuracy(make_cfg, tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    y = (rng.random(n) < 0.03).astype(int)
    x = rng.normal(size=(n, 4)) + y[:, None] * 1.5
    path = tmp_path / "rare.csv"
    pd.DataFrame({**{f"f{i}": x[:, i] for i in range(4)}, "positive": y}).to_csv(path, index=False)
    record = run(table(make_cfg, path, "data.target=positive", "trainer.max_epochs=3", "logger=none"))
    assert record["monitor"]["metric"] == "val/bal_acc" and record["loss"] == "ce"
