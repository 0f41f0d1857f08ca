"""data=table: every problem of a table in one error with one fix line; tables as users have them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lightning.pytorch.utilities import rank_zero_only

from lossbench.data.table import TableDataModule
from lossbench.data.table_problems import Problems, override_value
from lossbench.errors import ConfigError, DataError
from lossbench.task import Task

INFO = {"level": logging.INFO, "logger": "lossbench"}


def penguins(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A small table with three text classes, four numeric features and a text feature."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "species": rng.choice(["adelie", "chinstrap", "gentoo"], n),
            "island": rng.choice(["biscoe", "dream"], n),
            "bill_length_mm": rng.normal(44, 5, n),
            "bill_depth_mm": rng.normal(17, 2, n),
            "flipper_length_mm": rng.normal(200, 14, n),
            "body_mass_g": rng.normal(4200, 800, n),
        }
    )


def write(frame: pd.DataFrame, path: Path, **kwargs) -> Path:
    frame.to_csv(path, index=kwargs.pop("index", False), **kwargs)
    return path


def built(path: Path, **options) -> TableDataModule:
    dm = TableDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


def test_every_problem_of_a_table_in_one_error_with_one_fix_line(tmp_path):
    frame = penguins()
    for col, rows in (("bill_length_mm", [1, 2]), ("bill_depth_mm", [3]), ("body_mass_g", [4, 5, 6])):
        frame.loc[rows, col] = np.nan
    frame["name"] = [f"bird-{i}" for i in range(len(frame))]
    path = write(frame, tmp_path / "p.csv")
    with pytest.raises(DataError) as err:
        built(path, target="species", drop=["sex"])
    text = str(err.value)
    assert "5 problems" in text and "\n" not in text
    for part in (
        "data.drop: column 'sex' is not in the file",
        "column 'name' has a distinct text value in every row",
        "feature column 'bill_length_mm' has 2 missing",
        "feature column 'bill_depth_mm' has 1 missing",
        "feature column 'body_mass_g' has 3 missing",
    ):
        assert part in text
    assert text.endswith("Fix them all with: data.drop=[name] data.impute=median")
    dm = built(path, target="species", drop=["name"], impute="median")  # the fix line works
    assert dm.input_shape == (6,)


def test_absent_columns_are_named_together_with_a_guess(tmp_path):
    path = write(penguins(), tmp_path / "p.csv")
    with pytest.raises(DataError) as err:
        built(path, target="Species", drop=["id"], split_column="fold")
    text = str(err.value)
    assert "3 problems" in text
    assert "data.target: column 'Species' is not in the file" in text
    assert "data.split_column: column 'fold' is not in the file" in text
    assert "data.drop: column 'id' is not in the file" in text
    assert "data.drop=[] data.target=species" in text


def test_option_clashes_alone_are_a_config_error(tmp_path):
    path = write(penguins().assign(other="x"), tmp_path / "p.csv")
    with pytest.raises(ConfigError, match=r"data.task=classification takes one target column"):
        built(path, target=["species", "island"], task="classification")


def test_missing_targets_are_an_error_offering_drop_missing_target(tmp_path):
    frame = penguins()
    frame.loc[[0, 7, 9], "species"] = None
    frame.loc[4, "bill_depth_mm"] = np.nan
    path = write(frame, tmp_path / "p.csv")
    with pytest.raises(DataError) as err:
        built(path, target="species")
    text = str(err.value)
    assert "target column 'species' has 3 missing values" in text and "bill_depth_mm" in text
    assert text.endswith("Fix them all with: data.drop_missing_target=true data.impute=median")
    dm = built(path, target="species", impute="median", drop_missing_target=True)
    info = dm.describe()
    assert info["missing_target_rows_dropped"] == 3
    assert info["n_train"] + info["n_val"] + info["n_test"] == len(frame) - 3
    assert (
        "missing_target_rows_dropped"
        not in built(write(penguins(), tmp_path / "q.csv"), target="species").describe()
    )


def test_drop_missing_target_keeps_integer_labels_classes(tmp_path):
    frame = penguins().assign(grade=np.tile([1, 2, 3], 40).astype(float))
    frame.loc[[2, 5], "grade"] = np.nan  # pandas reads the labels as floats for their missing values
    dm = built(write(frame, tmp_path / "p.csv"), target="grade", drop=["species"], drop_missing_target=True)
    assert dm.task is Task.CLASSIFICATION and dm.label_names == [1, 2, 3]
    assert dm.describe()["missing_target_rows_dropped"] == 2


def test_drop_missing_target_is_an_option_of_data_table(make_cfg, tmp_path):
    cfg = make_cfg("data=table", "data.path=x.csv", "data.target=y")
    assert cfg.data.drop_missing_target is False
    with pytest.raises(ConfigError, match=r"data.drop_missing_target='yes'.*true or false"):
        TableDataModule(path="x.csv", target="y", drop_missing_target="yes")


def test_whole_numbers_saved_as_floats_stay_regression_with_a_note_naming_data_task(tmp_path, caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=100), "y": (np.arange(100) % 2).astype(float)})
    frame["z"] = 1.0 - frame["y"]
    with caplog.at_level(**INFO):
        assert built(write(frame, tmp_path / "a.csv"), target="y").task is Task.REGRESSION
        assert built(write(frame, tmp_path / "b.csv"), target=["y", "z"]).task is Task.REGRESSION
    assert "'y' holds 2 distinct whole numbers as floats (0, 1): inferred as regression" in caplog.text
    assert "data.task=classification" in caplog.text and "data.task=multilabel" in caplog.text


def test_integer_targets_with_many_values_are_regression(tmp_path, caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=3000), "age": rng.integers(20, 80, 3000)})  # 60 values
    with caplog.at_level(**INFO):
        dm = built(write(frame, tmp_path / "a.csv"), target="age")
    assert dm.task is Task.REGRESSION
    assert "'age' has 60 distinct integer values in 3000 rows: inferred as regression" in caplog.text
    assert "data.task=classification" in caplog.text
    few = pd.DataFrame({"x": rng.normal(size=60), "y": np.arange(60) % 25})  # 25 values, few repeats
    assert built(write(few, tmp_path / "f.csv"), target="y").task is Task.REGRESSION
    classes = pd.DataFrame({"x": rng.normal(size=300), "y": np.arange(300) % 12})
    assert built(write(classes, tmp_path / "c.csv"), target="y").task is Task.CLASSIFICATION
    dm = built(write(frame, tmp_path / "a.csv"), target="age", task="classification")
    assert dm.task is Task.CLASSIFICATION and dm.num_classes == 60


def test_small_classes_of_a_numeric_target_name_regression(tmp_path):
    frame = pd.DataFrame({"x": np.arange(60.0), "y": np.r_[np.zeros(30), np.ones(29), 7].astype(int)})
    with pytest.raises(DataError, match=r"class 7 has only 1 sample.*set data.task=regression"):
        built(write(frame, tmp_path / "n.csv"), target="y")
    text = frame.assign(y=np.where(frame["y"] == 7, "rare", "common"))
    with pytest.raises(DataError, match=r"class 'rare' has only 1 sample") as err:
        built(write(text, tmp_path / "t.csv"), target="y")
    assert "data.task=regression" not in str(err.value)


def test_repeated_column_names_are_an_error_naming_them(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,a,b,b,b,y\n" + "".join(f"{i},{i + 1},{i},{i},{i},{i % 2}\n" for i in range(30)))
    with pytest.raises(DataError, match=r"repeats the column name\(s\) 'a' \(2 times\), 'b' \(3 times\)"):
        built(path, target="y")
    (tmp_path / "d.tsv").write_text("a\ta\ty\n" + "1\t2\t0\n3\t4\t1\n" * 3)
    with pytest.raises(DataError, match=r"2 problems.*'a' \(2 times\).*data.drop: column 'z'"):
        built(tmp_path / "d.tsv", target="y", drop=["z"])


def test_row_numbers_and_pandas_index_columns_are_dropped_with_a_note(tmp_path, caplog):
    frame = penguins()
    with caplog.at_level(**INFO):
        dm = built(write(frame, tmp_path / "i.csv", index=True), target="species")
    assert dm.index_columns == ["Unnamed: 0"] and dm.input_shape == (6,)
    assert "'Unnamed: 0'" in caplog.text and "number the rows" in caplog.text
    assert dm.describe()["index_columns_dropped"] == ["Unnamed: 0"]
    named = frame.assign(rownames=np.arange(1, len(frame) + 1))[["rownames", *frame.columns]]
    dm = built(write(named, tmp_path / "r.csv"), target="species")
    assert dm.index_columns == ["rownames"] and dm.input_shape == (6,)
    kept = frame.assign(id=np.arange(len(frame)) * 3 % len(frame) + 1000)  # ids, not row numbers
    assert built(write(kept, tmp_path / "k.csv"), target="species").index_columns == []


def test_messages_show_values_not_numpy_reprs(tmp_path):
    frame = pd.DataFrame({"x": np.arange(30.0), "y": np.ones(30, dtype=int)})
    with pytest.raises(DataError, match=r"single class \(1\)") as err:
        built(write(frame, tmp_path / "one.csv"), target="y")
    assert "np." not in str(err.value)


def test_fix_line_keeps_the_users_lists_and_quotes_odd_values():
    problems = Problems("table t.csv", {"drop": ["id", "gone"], "na_values": ["NA"], "impute": "none"})
    problems.add("a", drop=["bill length"])
    problems.add("b", undrop=["gone"])
    problems.add("c", na_values=["?"], impute="median")
    problems.add("d", impute="median")
    assert problems.fix_line() == "\"data.drop=[id,'bill length']\" data.na_values=[NA,?] data.impute=median"
    assert [override_value(v) for v in ("1", "true", "x.y", "it's")] == ["'1'", "'true'", "x.y", "'it\\'s'"]


def test_many_columns_with_missing_values_are_one_entry(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"f{j}": rng.normal(size=40) for j in range(8)}).assign(y=np.arange(40) % 2)
    for j in range(7):
        frame.loc[j, f"f{j}"] = np.nan
    with pytest.raises(
        DataError, match=r": 7 feature columns have missing or infinite values: 'f0' \(1\), 'f1'"
    ):
        built(write(frame, tmp_path / "w.csv"), target="y")


def test_a_mistyped_target_column_is_not_checked_as_a_feature(tmp_path):
    frame = penguins()
    frame.loc[[1, 2], "species"] = None
    with pytest.raises(DataError) as err:
        built(write(frame, tmp_path / "p.csv"), target="specie")
    assert "did you mean 'species'?" in str(err.value) and "missing" not in str(err.value)


def test_numbers_with_a_decimal_comma_name_data_decimal_and_read_with_it(tmp_path):
    """A ``;`` file of European numbers (``3,5``): read as text they would be one-hot classes of a
    classification target; each such column is named, with ``"data.decimal=','"``, and read with it."""
    frame = penguins().assign(rating=lambda f: np.round(f.bill_depth_mm / 4, 1))
    path = write(frame, tmp_path / "eu.csv", sep=";", decimal=",")
    with pytest.raises(DataError) as err:
        built(path, target="rating", sep=";")
    text = str(err.value)
    assert re.search(r"target column 'rating' holds numbers written with a decimal comma \('\d,\d'\)", text)
    assert "column 'bill_length_mm' holds numbers written with a decimal comma" in text
    assert text.endswith("Fix them all with: \"data.decimal=','\"")
    dm = built(path, target="rating", sep=";", decimal=",")
    assert dm.task is Task.REGRESSION and dm.input_shape == (9,), "species and island one-hot, 4 numbers"
    with pytest.raises(ConfigError, match=r"data.decimal=';' is not valid: choose one of"):
        built(path, target="rating", sep=";", decimal=";")


def test_a_few_decimal_commas_among_points_are_cells_to_fix_not_a_decimal_setting(tmp_path):
    """One ``12,5`` among numbers written ``115.17``: ``data.decimal=','`` would leave every other number as
    text, so the cells are named instead; set anyway, the columns it leaves as text say to leave it out."""
    frame = penguins().assign(y=lambda f: f.bill_length_mm.round(2).astype(str))
    frame.loc[7, "y"] = "12,5"
    path = write(frame, tmp_path / "stray.csv")
    with pytest.raises(DataError) as err:
        built(path, target="y")
    text = str(err.value)
    said = r"target column 'y' holds numbers written with a decimal point \('[\d.]+'\) and 1 with a decimal "
    assert re.search(said + r"comma \('12,5'\): write those with a decimal point in the file", text)
    assert "data.decimal" not in text
    with pytest.raises(DataError) as err:
        built(path, target="y", decimal=",")
    text = str(err.value)
    assert "and 1 with a decimal comma ('12,5')" in text and "data.decimal=','\"" not in text
    said = r"column 'bill_depth_mm' holds numbers written with a decimal point \('[\d.]+'\), which "
    assert re.search(said + r"data.decimal=',' leaves as text", text) and text.endswith("data.decimal=.")
    frame.loc[7, "y"] = "12.5"
    assert built(write(frame, tmp_path / "fixed.csv"), target="y").task is Task.REGRESSION


def test_a_target_column_with_one_value_is_refused_before_training(tmp_path):
    frame = penguins().assign(y=lambda f: f.body_mass_g, y2=3.0)
    path = write(frame, tmp_path / "c.csv")
    said = r"target column 'y2' holds one value \(3.0\) in every row: there is nothing to regress and its "
    with pytest.raises(DataError, match=said + r"R² is undefined: leave it out of data.target"):
        built(path, target=["y", "y2"])
    with pytest.raises(DataError, match=r"'y2' holds one value \(3.0\).*is data.target the right column\?"):
        built(path, target="y2", task="regression")
    assert built(path, target=["y"]).task is Task.REGRESSION


def test_labels_with_a_stray_value_or_a_label_that_never_changes_are_named(tmp_path):
    rng = np.random.default_rng(0)
    frame = penguins(200).assign(**{f"lab{k}": (rng.random(200) < 0.3).astype(int) for k in range(4)})
    frame.loc[:5, "lab2"] = 2
    labels = ["lab0", "lab1", "lab2", "lab3"]
    with pytest.raises(DataError) as err:
        built(write(frame, tmp_path / "stray.csv"), target=labels, drop=["species"])
    text = str(err.value)
    assert "target columns ['lab0', 'lab1', 'lab3'] hold only 0 and 1, but 'lab2' holds [2] in 6 rows" in text
    assert "data.task=multilabel" in text and "set data.task=regression" in text
    assert (
        built(tmp_path / "stray.csv", target=labels, drop=["species"], task="regression").task
        is Task.REGRESSION
    )
    with pytest.raises(DataError, match=r"multi-label target column 'lab2' holds \['2'\]"):
        built(tmp_path / "stray.csv", target=labels, drop=["species"], task="multilabel")
    floats = frame.assign(lab2=frame.lab2.clip(0, 1).astype(float))  # 0.0/1.0 labels: no stray cell
    dm = built(write(floats, tmp_path / "floats.csv"), target=labels, drop=["species"])
    assert dm.task is Task.REGRESSION, "as the INFO line on 0/1 targets some of which are floats says"
    frame["lab2"] = frame.lab2.clip(0, 1)
    frame["lab3"] = 0
    said = r"label column 'lab3' is 0 in every row: no loss can learn a label that never changes, and its AP "
    with pytest.raises(DataError, match=said + r"is undefined: leave it out of data.target"):
        built(write(frame, tmp_path / "zero.csv"), target=labels, drop=["species"])
    assert built(tmp_path / "zero.csv", target=labels[:3], drop=["species"]).task is Task.MULTILABEL


def test_a_target_of_numbers_with_a_missing_marker_is_not_given_a_class_for_it(tmp_path):
    frame = penguins().assign(y=lambda f: (f.bill_length_mm > 44).astype(int).astype(object))
    frame.loc[[3, 30, 60], "y"] = "?"
    path = write(frame, tmp_path / "q.csv")
    with pytest.raises(DataError) as err:
        built(path, target="y")
    assert "target column 'y' holds numbers and the text values ['?']" in str(err.value)
    assert "data.na_values=[?] and data.drop_missing_target=true" in str(err.value)
    dm = built(path, target="y", na_values=["?"], drop_missing_target=True)
    assert dm.num_classes == 2 and dm.missing_target_rows == 3
    assert built(path, target="y", task="classification").num_classes == 3, "data.task says they are classes"


def test_a_file_not_in_utf8_names_data_encoding_and_reads_with_it(tmp_path):
    frame = penguins().assign(island=lambda f: np.where(f.island == "dream", "Zürich", "Genève"))
    path = write(frame, tmp_path / "latin.csv", encoding="cp1252")
    with pytest.raises(DataError, match=r"is not utf-8 text \(byte 0xfc at \d+\): set data.encoding"):
        built(path, target="species")
    assert built(path, target="species", encoding="cp1252").input_shape == (6,)
    with pytest.raises(ConfigError, match=r"data.encoding='klingon' is not a text encoding Python knows"):
        built(path, target="species", encoding="klingon")


def test_an_empty_column_is_dropped_and_an_id_like_integer_column_is_named(tmp_path, caplog):
    frame = penguins().assign(blank=np.nan)
    frame.insert(0, "customer", np.random.default_rng(1).choice(10**6, len(frame), replace=False))
    path = write(frame, tmp_path / "excel.csv")
    with pytest.raises(DataError, match=r"column 'blank' is empty \(no value in any row\): drop it with "):
        built(path, target="species", impute="median")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        dm = built(path, target="species", drop=["blank"])
        built(path, target="species", drop=["blank"])
    assert dm.input_shape == (7,), "the id-like column stays a feature: it may be one"
    said = "column 'customer' holds a distinct integer in every row: if it is an id, drop it with data.drop="
    said += "[blank,customer]"  # with the columns dropped already
    assert caplog.text.count(said) == 1, "said once per process, though the table is read twice"


def test_several_text_target_columns_name_multilabel(tmp_path):
    frame = penguins().assign(big=lambda f: np.where(f.body_mass_g > 4200, "yes", "no"))
    frame["long"] = np.where(frame.bill_length_mm > 44, "yes", "no")
    with pytest.raises(
        DataError, match=r"'big' is not numeric.*recode each label column as 0/1 for data.task"
    ):
        built(write(frame, tmp_path / "yn.csv"), target=["big", "long"])


def test_labels_that_differ_only_in_case_or_spaces_are_named(tmp_path, caplog):
    frame = penguins()
    frame.loc[:9, "species"] = "Adelie"
    frame.loc[10:14, "species"] = "adelie "
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        dm = built(write(frame, tmp_path / "case.csv"), target="species")
    assert dm.num_classes == 5, "each spelling is a class, as the file says"
    assert (
        "target 'species' has labels that differ only in case or spaces ('Adelie', 'adelie', 'adelie ')"
        in (caplog.text)
    )


def test_a_label_without_a_training_positive_is_named(tmp_path, caplog, monkeypatch):
    """A label whose positives all fall outside the training split (here by data.split_column)."""
    rng = np.random.default_rng(1)
    frame = penguins(200).assign(**{f"lab{k}": (rng.random(200) < 0.3).astype(int) for k in range(3)})
    frame["part"] = np.where(np.arange(200) < 140, "train", np.where(np.arange(200) < 170, "val", "test"))
    frame.loc[:139, "lab1"] = 0
    frame.loc[150, "lab1"] = 1
    path = write(frame, tmp_path / "rare.csv")
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        dm = built(path, target=["lab0", "lab1", "lab2"], drop=["species"], split_column="part")
    assert dm.class_counts.tolist()[1] == 0
    assert "label(s) 'lab1' have no positive in the training split: no loss can learn them" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        built(path, target=["lab0", "lab2"], drop=["species", "lab1"], split_column="part")
    assert "no positive in the training split" not in caplog.text
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # another DDP process: rank 0 says it
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        built(path, target=["lab0", "lab1", "lab2"], drop=["species"], split_column="part")
    assert "no positive in the training split" not in caplog.text
