"""data=table: a user's CSV/TSV/Parquet/NPZ file trains end to end; every bad input is one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightning.pytorch.utilities import rank_zero_only
from sklearn.datasets import load_diabetes, load_wine

from lossbench.errors import ConfigError, DataError
from lossbench.task import Task
from tests.tables import built, table, wine_frame


def test_npz_two_dimensional_arrays_become_columns(make_cfg, tmp_path):
    x, y = load_wine(return_X_y=True)
    np.savez(tmp_path / "w.npz", x=x, y=y)
    dm = built(make_cfg, tmp_path / "w.npz", "data.target=y")
    assert dm.task is Task.CLASSIFICATION and dm.input_shape == (13,) and dm.num_classes == 3
    assert dm.describe()["features"][0] == "numeric__x_0"


def test_task_can_be_set(make_cfg, tmp_path):
    frame = pd.DataFrame({"x": np.arange(60.0), "y": np.tile([0.0, 1.0, 2.0], 20)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert built(make_cfg, tmp_path / "t.csv", "data.target=y").task is Task.REGRESSION
    dm = built(make_cfg, tmp_path / "t.csv", "data.target=y", "data.task=classification")
    assert dm.task is Task.CLASSIFICATION and dm.num_classes == 3 and dm.label_names == [0.0, 1.0, 2.0]


def test_a_constant_offset_of_a_regression_target_changes_nothing_once_standardised(make_cfg, tmp_path):
    """Cast to float32 before standardising, y + 1e8 lost its digits (test R² 0.998 became 0.55)."""
    rng = np.random.default_rng(0)
    a, noise = rng.normal(size=200), rng.normal(size=200)
    splits = []
    for offset in (0.0, 1e8):
        frame = pd.DataFrame({"a": a, "y": 3 * a + 0.1 * noise + offset})
        frame.to_csv(tmp_path / f"o{offset:.0f}.csv", index=False)
        dm = built(make_cfg, tmp_path / f"o{offset:.0f}.csv", "data.target=y")
        splits.append(dm.splits["test"][1])
    assert dm.task is Task.REGRESSION
    np.testing.assert_allclose(splits[1].numpy(), splits[0].numpy(), atol=1e-6)
    info = dm.describe()  # the units of the targets and predictions, recorded in metrics.json
    back = info["target_mean"][0] + info["target_std"][0] * splits[1].double().numpy().ravel()
    y = 3 * a + 0.1 * noise + 1e8
    assert np.abs(y[None, :] - back[:, None]).min(axis=1).max() < 1e-4, "each test target, in its own units"


def test_split_column_gives_the_split(make_cfg, tmp_path):
    frame = wine_frame()
    frame["split"] = np.where(frame["id"] % 5 == 0, "test", np.where(frame["id"] % 5 == 1, "val", "train"))
    frame.to_csv(tmp_path / "s.csv", index=False)
    dm = built(make_cfg, tmp_path / "s.csv", "data.target=label", "data.drop=[id]", "data.split_column=split")
    assert (len(dm.splits["train"][1]), len(dm.splits["val"][1]), len(dm.splits["test"][1])) == (106, 36, 36)
    assert dm.input_shape == (15,), "the split column is not a feature"
    # the encoder saw the training rows only: their numeric columns have mean 0
    train = dm.splits["train"][0][:, :13].double()
    assert (
        train.mean(0).abs().max() < 1e-5 and dm.splits["test"][0][:, :13].double().mean(0).abs().max() > 1e-3
    )


def test_a_class_without_a_training_row_in_the_given_split_is_named(make_cfg, tmp_path, caplog, monkeypatch):
    frame = wine_frame()
    frame["split"] = np.where(frame["id"] % 5 == 0, "test", np.where(frame["id"] % 5 == 1, "val", "train"))
    frame.loc[(frame["label"] == "barbera") & (frame["split"] == "train"), "split"] = "val"
    frame.to_csv(tmp_path / "s.csv", index=False)
    with caplog.at_level("WARNING", logger="lossbench"):
        dm = built(
            make_cfg, tmp_path / "s.csv", "data.target=label", "data.drop=[id]", "data.split_column=split"
        )
    assert (
        dm.num_classes == 3
        and "class(es) 'barbera' have no training row in data.split_column=split" in caplog.text
    )
    caplog.clear()
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # another DDP process: rank 0 says it
    with caplog.at_level("WARNING", logger="lossbench"):
        built(make_cfg, tmp_path / "s.csv", "data.target=label", "data.drop=[id]", "data.split_column=split")
    assert "no training row" not in caplog.text


def test_stressors_apply_to_tables(make_cfg, wine_csv, tmp_path):
    common = ("data.target=label", "data.drop=[id]")
    clean = built(make_cfg, wine_csv, *common)
    stressed = built(make_cfg, wine_csv, *common, "data.imbalance_factor=5", "data.label_noise=0.2")
    assert stressed.class_counts.sum() < clean.class_counts.sum()
    assert stressed.describe()["label_noise_realised"] > 0.05
    assert stressed.splits["test"][1].equal(clean.splits["test"][1]), "val/test stay clean"
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(tmp_path / "d.csv", index=False)
    reg = built(make_cfg, tmp_path / "d.csv", "data.target=target", "data.outlier_fraction=0.1")
    assert reg.describe()["n_outliers"] > 0


def test_impute_median_fills_missing_features(make_cfg, tmp_path):
    frame = wine_frame()
    frame.loc[[3, 50, 90], "alcohol"] = np.nan
    frame.loc[[7, 8], "region"] = None
    frame.loc[11, "hue"] = np.inf
    frame.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(
        DataError, match=r"column 'alcohol' has 3 missing or infinite values.*data.impute=median"
    ):
        built(make_cfg, tmp_path / "m.csv", "data.target=label", "data.drop=[id]")
    dm = built(make_cfg, tmp_path / "m.csv", "data.target=label", "data.drop=[id]", "data.impute=median")
    assert all(bool(v[0].isfinite().all()) for v in dm.splits.values())


# --- bad input: one error naming the key and the fix ------------------------------------------------------
def test_missing_file_unknown_extension_and_corrupt_file(make_cfg, tmp_path):
    with pytest.raises(DataError, match=r"data.path=.*nope.csv does not exist"):
        built(make_cfg, tmp_path / "nope.csv", "data.target=y")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(ConfigError, match=r"unknown extension: use one of .csv"):
        built(make_cfg, tmp_path / "a.xlsx", "data.target=y")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"bad.parquet could not be read as parquet"):
        built(make_cfg, tmp_path / "bad.parquet", "data.target=y")
    (tmp_path / "bad.npz").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=r"bad.npz could not be read as npz"):
        built(make_cfg, tmp_path / "bad.npz", "data.target=y")


def test_target_problems(make_cfg, wine_csv, tmp_path):
    with pytest.raises(DataError, match=r"data.target: column 'labl' is not in .*columns are id, alcohol"):
        built(make_cfg, wine_csv, "data.target=labl")
    frame = wine_frame().assign(label="barolo")
    frame.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(DataError, match=r"single class \('barolo'\)"):
        built(make_cfg, tmp_path / "one.csv", "data.target=label", "data.drop=[id]")
    frame = wine_frame()
    frame.loc[0, "label"] = "rare"
    frame.to_csv(tmp_path / "rare.csv", index=False)
    with pytest.raises(DataError, match=r"class 'rare' has only 1 sample.*drop or merge that class"):
        built(make_cfg, tmp_path / "rare.csv", "data.target=label", "data.drop=[id]")
    frame = wine_frame()
    frame.loc[[4, 5], "label"] = None
    frame.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(DataError, match=r"target column 'label' has 2 missing values"):
        built(make_cfg, tmp_path / "nan.csv", "data.target=label", "data.drop=[id]")
    with pytest.raises(DataError, match=r"target column 'label' is not numeric.*data.task=classification"):
        built(make_cfg, wine_csv, "data.target=label", "data.drop=[id]", "data.task=regression")


def test_features_that_cannot_be_encoded(make_cfg, tmp_path):
    frame = wine_frame()
    frame["name"] = [f"wine-{i}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.raises(  # the advice keeps the columns dropped already: following it drops both
        DataError, match=r"column 'name' has a distinct text value in every row.*data.drop=\[id,name\]"
    ):
        built(make_cfg, tmp_path / "ids.csv", "data.target=label", "data.drop=[id]")
    frame = wine_frame()
    frame["sold"] = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(len(frame))]  # repeated
    frame.to_csv(tmp_path / "text_dates.csv", index=False)
    with pytest.raises(DataError, match=r"column 'sold' holds dates/times as text.*data.drop=\[id,sold\]"):
        built(make_cfg, tmp_path / "text_dates.csv", "data.target=label", "data.drop=[id]")
    frame["sold"] = [f"{1 + i % 3}.{i % 11}.{i % 4}" for i in range(len(frame))]  # versions: categories
    frame.to_csv(tmp_path / "versions.csv", index=False)
    dm = built(make_cfg, tmp_path / "versions.csv", "data.target=label", "data.drop=[id]")
    assert any(f.startswith("categorical__sold_") for f in dm.describe()["features"])
    frame = wine_frame()
    frame["when"] = pd.Timestamp("2024-01-01")
    frame.to_parquet(tmp_path / "dates.parquet")
    with pytest.raises(DataError, match=r"column 'when' holds dates/times"):
        built(make_cfg, tmp_path / "dates.parquet", "data.target=label", "data.drop=[id]")


def test_split_column_problems(make_cfg, tmp_path):
    frame = wine_frame().assign(split="train")
    frame.loc[:5, "split"] = "validation"
    frame.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match=r"data.split_column=split holds \['validation'\]"):
        built(make_cfg, tmp_path / "s.csv", "data.target=label", "data.drop=[id]", "data.split_column=split")


def test_numbers_with_text_markers_row_ids_and_integer_targets(make_cfg, tmp_path):
    frame = wine_frame()
    frame["hue"] = frame["hue"].astype(object)
    frame.loc[[1, 2, 3], "hue"] = "?"
    frame.to_csv(tmp_path / "q.csv", index=False)
    common = ("data.target=label", "data.drop=[id]")
    with pytest.raises(DataError, match=r"column 'hue' holds numbers and the text values \['\?'\].*na_val"):
        built(make_cfg, tmp_path / "q.csv", *common)
    with pytest.raises(DataError, match=r"column 'hue' has 3 missing"):
        built(make_cfg, tmp_path / "q.csv", *common, "data.na_values=[?]")
    dm = built(make_cfg, tmp_path / "q.csv", *common, "data.na_values=[?]", "data.impute=median")
    assert dm.input_shape == (15,), "hue stays one numeric feature"
    # a column named like an index that counts the rows is dropped; any other row number is an error
    dm = built(make_cfg, tmp_path / "q.csv", "data.target=label", "data.na_values=[?]", "data.impute=median")
    assert dm.index_columns == ["id"] and dm.input_shape == (15,)
    frame.rename(columns={"id": "serial"}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(DataError, match=r"column 'serial' numbers the rows.*data.drop=\[serial\]"):
        built(make_cfg, tmp_path / "r.csv", *common[:1], "data.na_values=[?]", "data.impute=median")
    # an integer target with many distinct values is a quantity: regression unless data.task says otherwise
    prices = pd.DataFrame({"x": np.linspace(0, 1, 200), "price": np.arange(200) * 7 % 151})
    prices.to_csv(tmp_path / "p.csv", index=False)
    assert built(make_cfg, tmp_path / "p.csv", "data.target=price").task is Task.REGRESSION
    assert built(make_cfg, tmp_path / "p.csv", "data.target=price", "data.task=regression").num_targets == 1


def test_a_file_separated_by_semicolons_names_data_sep_and_reads_with_it(make_cfg, tmp_path):
    frame = wine_frame().drop(columns=["region"])
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    with pytest.raises(
        ConfigError, match=r"read as one column .* separated by ';', not ','; add \"data.sep=';'\""
    ):
        built(make_cfg, tmp_path / "semi.csv", "data.target=label")
    dm = built(make_cfg, tmp_path / "semi.csv", "data.target=label", "data.sep=';'", "data.drop=[id]")
    assert dm.num_classes == 3 and dm.input_shape == (13,)
    frame.to_csv(tmp_path / "tabs.csv", sep="\t", index=False)
    assert built(make_cfg, tmp_path / "tabs.csv", "data.target=label", r"data.sep='\t'").num_classes == 3


def test_a_target_column_named_by_a_number(make_cfg, tmp_path):
    """``data.target=3`` reaches the data module as the int 3."""
    frame = wine_frame().drop(columns=["region", "id"])
    frame.columns = [str(i) for i in range(len(frame.columns))]
    frame.to_csv(tmp_path / "n.csv", index=False)
    dm = built(make_cfg, tmp_path / "n.csv", f"data.target={len(frame.columns) - 1}")
    assert dm.task is Task.CLASSIFICATION and dm.num_classes == 3


def built_for_eval(make_cfg, path, fitted, *overrides):
    """The data module of ``path`` as ``lossbench-eval`` builds it for a run with ``fitted`` data_info."""
    from hydra.utils import instantiate

    dm = instantiate(table(make_cfg, path, *overrides).data)
    dm.fitted = fitted
    dm.setup("fit")
    return dm


def test_the_recorded_encoding_is_the_transformers_and_eval_applies_it_by_column_name(make_cfg, tmp_path):
    """``lossbench-eval`` on another file of the run's columns: the run's medians, scales and categories,
    by column name (the file refitted standardised a rescaled column away and fed reordered columns)."""
    import json

    import torch

    frame = wine_frame()
    frame.loc[[3, 50, 90], "alcohol"] = np.nan
    frame.loc[[7, 8], "region"] = None
    frame.to_csv(tmp_path / "a.csv", index=False)
    opts = ("data.target=label", "data.drop=[id]", "data.impute=median")
    run = built(make_cfg, tmp_path / "a.csv", *opts)
    info = json.loads(json.dumps(run.describe()))  # as metrics.json keeps it
    assert (
        info["features"] == info["encoding"]["features"] and "categorical__region_north" in info["features"]
    )
    again = built_for_eval(make_cfg, tmp_path / "a.csv", info, *opts)
    for split in ("train", "val", "test"):  # the recorded encoding is the transformer's, to the bit
        assert torch.equal(again.splits[split][0], run.splits[split][0])
    frame[list(reversed(frame.columns))].to_csv(tmp_path / "reordered.csv", index=False)
    reordered = built_for_eval(make_cfg, tmp_path / "reordered.csv", info, *opts)
    assert torch.equal(reordered.splits["test"][0], run.splits["test"][0])
    frame.assign(alcohol=frame["alcohol"] * 100 + 50).to_csv(tmp_path / "scaled.csv", index=False)
    scaled = built_for_eval(make_cfg, tmp_path / "scaled.csv", info, *opts)
    column = info["features"].index("numeric__alcohol")
    assert scaled.splits["test"][0][:, column].median() > 10, "in the run's units, not the file's"
    frame.drop(columns="hue").to_csv(tmp_path / "fewer.csv", index=False)
    with pytest.raises(DataError, match=r"no column 'hue', which the tested run's model takes as features"):
        built_for_eval(make_cfg, tmp_path / "fewer.csv", info, *opts)
    frame.assign(hue=np.where(frame["hue"] > 1, "high", "low")).to_csv(tmp_path / "texts.csv", index=False)
    with pytest.raises(DataError, match=r"column\(s\) 'hue' the tested run read as numbers hold\(s\) text"):
        built_for_eval(make_cfg, tmp_path / "texts.csv", info, *opts)


def test_eval_takes_the_tested_runs_target_units(make_cfg, tmp_path):
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(tmp_path / "d.csv", index=False)
    run = built(make_cfg, tmp_path / "d.csv", "data.target=target")
    frame.assign(target=frame["target"] * 2 + 500).to_csv(tmp_path / "d2.csv", index=False)
    shifted = built_for_eval(make_cfg, tmp_path / "d2.csv", run.describe(), "data.target=target")
    assert shifted.describe()["target_mean"] == run.describe()["target_mean"]
    assert shifted.splits["test"][1].mean() > 5, "targets in the run's units, far off its mean"


def test_many_integer_classes_that_are_not_class_numbers_name_data_task(make_cfg, tmp_path, caplog):
    """Prices in steps of 50,000 are 17 integers: classes unless data.task=regression, which the log names."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "price": 600_000 + 50_000 * rng.integers(0, 17, 400)})
    frame.to_csv(tmp_path / "p.csv", index=False)
    with caplog.at_level("INFO", logger="lossbench"):
        dm = built(make_cfg, tmp_path / "p.csv", "data.target=price")
    assert dm.task is Task.CLASSIFICATION and "set data.task=regression if it is a quantity" in caplog.text
    caplog.clear()
    frame.assign(price=frame["price"] // 50_000 - 12).to_csv(tmp_path / "c.csv", index=False)
    with caplog.at_level("INFO", logger="lossbench"):
        built(make_cfg, tmp_path / "c.csv", "data.target=price")  # class numbers 0..16: nothing to say
    assert "data.task=regression" not in caplog.text
