"""Multi-label classification: the data (synthetic, tables, stressors), its metrics and training runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossbench.run import run

FAST = (
    "logger=none",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
)


# --- training -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["bce", "asl"])
@pytest.mark.slow
def test_multilabel_runs_learn_and_record_the_multilabel_metrics(make_cfg, tmp_path, loss):
    untrained = run(
        make_cfg(
            "data=multilabel",
            f"loss={loss}",
            "+trainer.limit_train_batches=0",
            *FAST,
            output_dir=tmp_path / "untrained",
        )
    )["test"]
    summary = run(
        make_cfg(
            "data=multilabel",
            f"loss={loss}",
            "trainer.max_epochs=5",
            "logger=csv",
            output_dir=tmp_path / "run",
        )
    )
    test = summary["test"]
    assert {"test/map", "test/f1_micro", "test/f1_macro", "test/subset_acc", "test/hamming"} <= set(test)
    assert test["test/map"] > untrained["test/map"] + 0.2, (untrained, test)
    assert test["test/hamming"] < untrained["test/hamming"]
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["monitor"]["metric"] == "val/map" and record["test"]["test/map"] == test["test/map"]
    with np.load(tmp_path / "run" / "predictions.npz") as p:
        assert p["probs"].shape == p["targets"].shape == p["preds"].shape
        assert p["targets"].shape[1] == 10 and set(np.unique(p["preds"])) <= {0, 1}
