"""data=table: a user's CSV/TSV/Parquet/NPZ file trains end to end; every bad input is one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from lossbench.config import losses_for_task
from lossbench.run import run
from lossbench.task import Task
from tests.conftest import read_metrics, run_cli
from tests.tables import built, table, wine_frame

FAST = ("logger=none", "callbacks=none", "trainer.max_epochs=2")


@pytest.mark.parametrize("loss", losses_for_task(Task.CLASSIFICATION))
def test_wine_csv_trains_with_every_classification_loss(make_cfg, wine_csv, loss):
    cfg = table(make_cfg, wine_csv, "data.target=label", "data.drop=[id]", f"loss={loss}", *FAST)
    summary = run(cfg)
    assert summary["data_info"]["labels"] == ["barbera", "barolo", "grignolino"]
    assert summary["data_info"]["input_shape"] == [13 + 2]  # 13 numeric + region one-hot
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0 and np.isfinite(summary["test"]["test/nll"])


def test_wine_csv_learns_and_writes_the_label_map(make_cfg, wine_csv, tmp_path):
    summary = run(table(make_cfg, wine_csv, "data.target=label", "data.drop=[id]", "logger=none"))
    assert summary["test"]["test/acc"] >= 0.9, summary["test"]
    assert json.loads((tmp_path / "labels.json").read_text()) == {
        "0": "barbera",
        "1": "barolo",
        "2": "grignolino",
    }
    assert read_metrics(tmp_path)["data_info"]["labels"][1] == "barolo"
    assert "categorical__region_north" in summary["data_info"]["features"]


@pytest.mark.slow
def test_parquet_tsv_and_npz_give_the_same_metrics_as_csv(make_cfg, wine_csv, tmp_path):
    frame = wine_frame()
    frame.to_parquet(tmp_path / "wine.parquet")
    frame.to_csv(tmp_path / "wine.tsv", sep="\t", index=False)
    numeric = frame.drop(columns=["region"])
    np.savez(tmp_path / "wine.npz", **{c: np.asarray(numeric[c].tolist()) for c in numeric.columns})
    common = ("data.target=label", "data.drop=[id]", *FAST)
    results = {}
    for name in ("wine.csv", "wine.parquet", "wine.tsv"):
        results[name] = run(table(make_cfg, tmp_path / name, *common, output_dir=tmp_path / "runs" / name))[
            "test"
        ]
    assert results["wine.parquet"] == results["wine.csv"] == results["wine.tsv"]
    npz = run(table(make_cfg, tmp_path / "wine.npz", *common, output_dir=tmp_path / "npz"))
    assert npz["data_info"]["input_shape"] == [13] and np.isfinite(npz["test"]["test/nll"])


@pytest.mark.slow
def test_regression_csv_trains_with_huber_and_multi_target(make_cfg, tmp_path):
    frame = load_diabetes(as_frame=True).frame  # float target
    frame["target2"] = frame["target"] * 0.5 + frame["bmi"] * 100.0
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    one = run(
        table(
            make_cfg,
            tmp_path / "diabetes.csv",
            "data.target=target",
            "data.drop=[target2]",
            "loss=huber",
            "logger=none",
            output_dir=tmp_path / "one",
        )
    )
    assert one["data_info"]["task"] == "regression" and one["test"]["test/r2"] > 0.2, one["test"]
    two = run(
        table(
            make_cfg,
            tmp_path / "diabetes.csv",
            "data.target=[target,target2]",
            "loss=mse",
            *FAST,
            output_dir=tmp_path / "two",
        )
    )
    assert two["data_info"]["input_shape"] == [10] and "test/rmse" in two["test"]
    # a distributional loss's [N, K, T] heads, and packed replicas' slices, reach the metrics as strided views
    from lossbench.packed import OK, build_packed, train_packed

    over = ("data.target=[target,target2]", *FAST, "+trainer.enable_checkpointing=false")
    cfgs = [
        table(make_cfg, tmp_path / "diabetes.csv", f"loss={loss}", *over, output_dir=tmp_path / loss)
        for loss in ("mse", "gaussian_nll")
    ]
    nll = run(cfgs[1])
    assert nll["status"] == "ok" and {"test/rmse", "test/crps"} <= set(nll["test"]), nll["test"]
    module, data = build_packed(cfgs)
    assert [r["status"] for r in train_packed(module, data, cfgs[0])] == [OK, OK]
    dm = built(make_cfg, tmp_path / "diabetes.csv", "data.target=[target,target2]")
    assert dm.num_targets == 2 and dm.splits["train"][1].shape[1] == 2


@pytest.mark.slow
def test_table_on_the_cli_and_with_ddp(make_cfg, wine_csv, tmp_path):
    """The one-process run in this process, the DDP run on the command line."""
    common = (
        f"data.path={wine_csv}",
        "data.target=label",
        "data.drop=[id]",
        "logger=none",
        "model.dropout=0",
        "trainer.max_epochs=2",
        "callbacks=none",
    )
    run(make_cfg("data=table", *common, "data.batch_size=16", output_dir=tmp_path / "one"))
    run_cli("data=table", *common, "data.batch_size=8", "trainer=ddp_cpu", "hydra.run.dir=ddp", cwd=tmp_path)
    one, ddp = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "ddp")
    assert one["data_info"]["n_train"] % 2 == 0 and one["data_info"]["n_train"] % 16, "an uneven last batch"
    for key, value in one["test"].items():
        assert ddp["test"][key] == pytest.approx(value, abs=1e-4), key


# --- bad input: one error naming the key and the fix ------------------------------------------------------


@pytest.mark.slow
def test_path_is_required_on_the_cli(tmp_path):
    proc = run_cli("data=table", "logger=none", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "data.path, data.target must be set" in proc.stdout + proc.stderr
