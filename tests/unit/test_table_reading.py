"""data=table: reading a file as written — its header, separators, encodings and number formats."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.data.splits import split_indices
from lossbench.data.table import TableDataModule
from lossbench.data.table_checks import check_table_file
from lossbench.data.table_io import read_table, repeated_columns
from lossbench.data.table_options import TableOptions
from lossbench.errors import ConfigError, DataError
from lossbench.task import Task


def built(path: Path, **options) -> TableDataModule:
    dm = TableDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


def refusal(path: Path, **options) -> str:
    """The one-line ``DataError`` that building the table module of ``path`` with ``options`` raises."""
    with pytest.raises(DataError) as err:
        built(path, **options)
    return str(err.value)


def test_a_repeated_column_is_named_whatever_the_separator_and_encoding(tmp_path):
    """``x;label;label`` read with ``data.sep=';'``: the copy ``label.1`` would be a feature leaking the
    target."""
    rows = "".join(f"{i};{i % 3};Zürich;{i % 2};{i % 2}\n" for i in range(40))
    path = tmp_path / "semi.csv"
    path.write_text("x1;x2;cat;label;label\n" + rows, encoding="cp1252")
    with pytest.raises(DataError, match=r"repeats the column name\(s\) 'label' \(2 times\)"):
        built(path, target="label", sep=";", encoding="cp1252")
    assert repeated_columns(path, ";", "cp1252") == {"label": 2}
    path.write_bytes(b"a,a,y\n\xff\xfe\x00,1,2\n")
    with pytest.raises(DataError, match=r"its header could not be read"):
        repeated_columns(path, ",", "ascii")


def test_thousands_separators_name_data_thousands_not_a_decimal_comma(tmp_path):
    """``73,073`` among ``980``: read with ``data.decimal=','`` it would be 73.073 beside 980; it is named as
    thousands separators, with ``"data.thousands=','"``, and read as 73073 with it."""
    rng = np.random.default_rng(0)
    price = rng.integers(100, 90_000, 60)
    frame = pd.DataFrame(
        {
            "area": [f"{v:,}" for v in rng.integers(200, 5_000, 60)],
            "rooms": rng.integers(1, 6, 60),
            "price": [f"{v:,}" for v in price],
        }
    )
    frame.loc[0, "area"], frame.loc[1, "price"] = "980", "1,234.5"
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    text = refusal(path, target="price")
    assert "target column 'price' holds numbers written with thousands separators" in text
    assert "column 'area' holds numbers written with thousands separators" in text
    assert "data.decimal" not in text and text.endswith("Fix them all with: \"data.thousands=','\"")
    dm = built(path, target="price", thousands=",")
    assert dm.task is Task.REGRESSION
    assert dm.input_shape == (2,)
    read = read_table(path, thousands=",")
    assert read["price"].iloc[1] == 1234.5 and read["area"].iloc[0] == 980
    assert read["price"].iloc[2] == price[2] and pd.api.types.is_numeric_dtype(read["area"])
    frame.assign(rating=rng.normal(3, 1, 60).round(2)).to_csv(path, index=False)
    text = refusal(path, target="rating")
    assert "data.decimal" not in text and "\"data.thousands=','\"" in text
    with pytest.raises(ConfigError, match=r"data.thousands=',' is data.decimal too"):
        built(path, target="price", thousands=",", decimal=",")


def test_values_beyond_float32_are_an_error_and_far_placeholders_a_warning(tmp_path, caplog):
    """``1e300`` passes a finite check but is infinite as a float32 (a NaN loss at step 0); ``1e30``
    placeholders among values near 0 are named in a warning; heavy tails are not."""
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "y": rng.normal(size=n)})
    frame.loc[3, "x"], frame.loc[5, "y"] = 1e300, -1e300
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    text = refusal(path, target="y")
    assert "column 'x' holds 1 value(s) beyond float32's range of ±3.4e38 (1e300)" in text
    assert "target column 'y' holds 1 value(s) beyond float32's range of ±3.4e38 (-1e300)" in text
    assert text.endswith(
        "Fix them all with: \"data.na_values=['-1e300','1e300']\" data.drop_missing_target=true "
        "data.impute=median"
    )
    dm = built(path, target="y", na_values=["1e300", "-1e300"], drop_missing_target=True, impute="median")
    assert dm.missing_target_rows == 1
    frame.loc[3, "x"], frame.loc[5, "y"] = 1e30, 0.5
    frame.loc[[7, 8], "y"] = 1e30
    frame["tail"] = rng.lognormal(0, 2, n) * 1e4
    frame["counts"] = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 10**6, n))
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        built(path, target="y")
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "column 'x' holds 1 value(s) many orders of magnitude beyond the rest (1e30;" in m
        and "data.na_values=[1e30] (with data.impute=median), or drop the column with data.drop=[x]" in m
        for m in said
    ), said
    target = "target column 'y' holds 2 value(s)"
    assert any(target in m and "data.drop_missing_target=true" in m for m in said), said
    assert not any("'tail'" in m or "'counts'" in m or "'z'" in m for m in said), said


def test_every_class_too_small_to_split_is_named_with_its_count_before_training(tmp_path):
    frame = pd.DataFrame({"x": np.arange(64.0), "y": ["a"] * 30 + ["b"] * 30 + ["c", "d", "d", "e"]})
    path = tmp_path / "rare.csv"
    frame.to_csv(path, index=False)
    options = TableOptions.from_config(target="y")
    with pytest.raises(DataError) as err:
        check_table_file(path, options)  # the check before torch loads
    text = str(err.value)
    named = "3 classes have fewer than 3 samples: 'c' (1), 'd' (2), 'e' (1)"
    assert f"target 'y': {named}, too few for a " in text
    assert "data.task=regression" not in text
    given = frame.assign(split=["train", "val", "test", "train"] * 16)
    given.to_csv(path, index=False)
    given_split = TableOptions.from_config(target="y", split_column="split")
    assert check_table_file(path, given_split).split is not None, "a given split is not stratified"
    with pytest.raises(DataError, match=re.escape(named)):
        split_indices(pd.factorize(frame.y, sort=True)[0], 0.2, 0.2, 0, True, class_names=list("abcde"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
@pytest.mark.parametrize("given", ["utf-8", "cp1252", "latin-1"])
def test_a_utf16_file_names_data_encoding_utf16_and_reads_with_it(tmp_path, encoding, given):
    """Excel's "Unicode text" starts with a byte order mark: cp1252 or latin-1 would read it garbled."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40), "city": ["Zürich", "Genève"] * 20, "y": [0, 1] * 20})
    path = tmp_path / "unicode.csv"
    text = frame.to_csv(index=False)
    path.write_bytes(("\ufeff" + text).encode(encoding) if encoding.endswith("be") else text.encode(encoding))
    with pytest.raises(DataError, match=r"is UTF-16 text .*: set data.encoding=utf-16, or save") as err:
        built(path, target="y", encoding=given)
    assert f"not {given}:" in str(err.value) and "data.encoding=cp1252" not in str(err.value)
    assert built(path, target="y", encoding="utf-16").input_shape == (3,)


def test_a_utf32_file_and_a_gzipped_utf16_file_name_their_encoding(tmp_path):
    frame = pd.DataFrame({"x": [0.5, 1.5] * 20, "y": [0, 1] * 20})
    wide, packed = tmp_path / "wide.csv", tmp_path / "packed.csv.gz"
    wide.write_bytes(frame.to_csv(index=False).encode("utf-32"))
    packed.write_bytes(gzip.compress(frame.to_csv(index=False).encode("utf-16")))
    for given in ("utf-8", "utf-16"):  # UTF-32's little-endian mark starts as UTF-16's does
        with pytest.raises(DataError, match=rf"is UTF-32 text .*, not {given}: set data.encoding=utf-32,"):
            built(wide, target="y", encoding=given)
    with pytest.raises(DataError, match=r"is UTF-16 text .*: set data.encoding=utf-16,"):
        built(packed, target="y", encoding="cp1252")
    assert built(wide, target="y", encoding="utf-32").input_shape == (1,)


def test_a_decimal_comma_is_suggested_as_the_shell_passes_it(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40).round(2), "y": [0, 1] * 20})
    path = tmp_path / "eu.csv"
    frame.to_csv(path, index=False, sep=";", decimal=",")
    with pytest.raises(DataError) as err:
        built(path, target="y", sep=";")
    assert str(err.value).endswith(
        "read them as numbers with \"data.decimal=','\" (quoted as shown, for the shell)"
    )


def test_text_columns_of_mostly_numbers_or_of_many_values_are_named(tmp_path, caplog):
    """A column 67% numbers and 33% ``low`` makes each number a category: a warning names its text values; a
    patient id repeated twice per patient would add a feature column per patient."""
    rng = np.random.default_rng(0)
    n = 180
    level = rng.integers(10, 500, n).astype(str)
    level[::3] = "low"
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "level": level,
            "patient": [f"P{i // 2:03d}" for i in range(n)],
            "island": rng.choice(["biscoe", "dream", "torgersen"], n),
            "y": [0, 1] * (n // 2),
        }
    )
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        dm = built(path, target="y")
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    level_said = [m for m in said if "column 'level' holds numbers in 67% of its rows" in m]
    assert level_said and "the text values ['low'], so each number is a category" in level_said[0], said
    assert "data.na_values=[low] (with data.impute=median)" in level_said[0], said
    assert "drop it with data.drop=[level]" in level_said[0], said
    assert any(
        "column 'patient' has 90 distinct text values in 180 rows, so one-hot encoding adds up to 90 feature "
        "columns for it: if it is an id or free text, drop it with data.drop=[patient]" in m
        for m in said
    ), said
    assert not any("'island'" in m for m in said), said
    assert dm.input_shape[0] > 80


def test_categories_written_as_numbers_are_kept_with_a_warning(tmp_path, caplog):
    """Rooms ``1, 2, 3, 4+`` and ZIP codes, 30% of them ZIP+4, are categories: kept, each named in a
    warning; a column 95% numbers with a ``?`` stays a problem naming data.na_values."""
    rng = np.random.default_rng(2)
    n = 400
    zips = rng.choice(["02134", "10001", "94103", "60601", "73301"], n).astype(object)
    plus4 = rng.random(n) < 0.3
    zips[plus4] = [f"{z}-{rng.integers(1000, 9999)}" for z in zips[plus4]]
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "rooms": rng.choice(["1", "2", "3", "4+"], n),
            "zip": zips,
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "homes.csv"
    frame.to_csv(path, index=False, quoting=1)
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        dm = built(path, target="y")
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    rooms = [m for m in said if "column 'rooms' holds numbers in" in m]
    assert rooms and "the text values ['4+']" in rooms[0] and "data.drop=[rooms]" in rooms[0], said
    zip_said = [m for m in said if "column 'zip' holds numbers in" in m]
    assert zip_said and "distinct)" in zip_said[0] and "data.na_values=[" in zip_said[0], said
    assert dm.input_shape[0] > 4
    marked = frame.assign(rooms=np.where(np.arange(n) % 20 == 0, "?", rng.integers(1, 5, n).astype(str)))
    marked.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'rooms' holds numbers and the text values \['\?'\]"):
        built(path, target="y")


@pytest.mark.parametrize("kind", ["parquet", "npz"])
def test_numeric_na_values_mark_numbers_missing_in_parquet_and_npz(tmp_path, kind):
    """``data.na_values=[1e30,-999]`` as the float32 and magnitude checks suggest: the CSV reader matches
    them as numbers, so Parquet and ``.npz`` do too."""
    frame = pd.DataFrame({"x": [1.0, 1e30, 2.0, 3.0], "n": [1, -999, 3, 4], "y": [0, 1, 0, 1]})
    path = tmp_path / f"t.{kind}"
    if kind == "parquet":
        frame.to_parquet(path)
    else:
        np.savez(path, **{c: frame[c].to_numpy() for c in frame.columns})
    read = read_table(path, na_values=["1e+30", "-999"])
    assert read["x"].isna().tolist() == [False, True, False, False]
    assert read["n"].isna().tolist() == [False, True, False, False] and read["y"].notna().all()


def test_points_separating_thousands_with_a_decimal_comma_name_data_thousands(tmp_path):
    """``1.234,5`` in a file read with ``data.sep=';'`` and ``data.decimal=','`` is text: named as thousands
    separators with ``data.thousands=.``, and read as 1234.5 with it."""
    rng = np.random.default_rng(3)
    n = 300

    def european(value: float) -> str:
        return f"{value:,.1f}".translate(str.maketrans(",.", ".,"))

    price = rng.choice(rng.uniform(0, 100_000, 100), n)
    price[:3] = [5.5, 999.9, 1234.5]
    rows = "".join(
        f"{european(x)};{european(p)};{i % 2}\n"
        for i, (x, p) in enumerate(zip(rng.normal(size=n), price, strict=True))
    )
    path = tmp_path / "eu.csv"
    path.write_text("x;price;y\n" + rows)
    text = refusal(path, target="y", sep=";", decimal=",")
    assert "column 'price' holds numbers written with thousands separators ('1.234,5'" in text, text
    assert text.endswith("data.thousands=."), text
    dm = built(path, target="y", sep=";", decimal=",", thousands=".")
    assert dm.input_shape == (2,)
    read = read_table(path, sep=";", decimal=",", thousands=".")
    assert read["price"].iloc[2] == 1234.5 and read["price"].iloc[1] == 999.9


def test_decimal_points_read_with_a_decimal_comma_are_not_taken_for_thousands(tmp_path):
    """``3.185`` could be 3185 written with a point between thousands; beside ``1.5`` and ``0.083`` it is
    a decimal point, and ``data.thousands=.`` would read it as 3185: the fix is to leave data.decimal out."""
    rng = np.random.default_rng(4)
    price = [f"{v:.3f}" for v in rng.uniform(1, 10, 60)] + ["1.5", "0.25", "0.083"]
    path = tmp_path / "points.csv"
    path.write_text("price;y\n" + "".join(f"{p};{i % 2}\n" for i, p in enumerate(price)))
    text = refusal(path, target="y", sep=";", decimal=",")
    assert "data.thousands" not in text and "leave data.decimal out" in text, text


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (["1.234,5", "12.345,67", "999,5", "0,5"] * 8 + ["0.5"], "and 1 with a decimal point ('0.5')"),
        (["1.234", "12.345", "999", "5", "123.456"] * 7, "if the points separate thousands set"),
    ],
)
def test_thousands_points_beside_a_decimal_point_or_alone_are_named_without_guessing(tmp_path, values, named):
    path = tmp_path / "eu.csv"
    path.write_text("x;y\n" + "".join(f"{v};{i % 2}\n" for i, v in enumerate(values)))
    with pytest.raises(DataError, match=re.escape(named)) as err:
        built(path, target="y", sep=";", decimal=",")
    assert "data.thousands=." in str(err.value) and "\n" not in str(err.value)


def test_a_gz_file_that_is_not_gzip_is_named_and_an_upper_case_gz_is_read_for_its_mark(tmp_path):
    frame = pd.DataFrame({"x": [0.5, 1.5] * 20, "y": [0, 1] * 20})
    (tmp_path / "plain.csv.gz").write_text(frame.to_csv(index=False))
    with pytest.raises(DataError, match=r"could not be read as csv.gz"):
        built(tmp_path / "plain.csv.gz", target="y")
    (tmp_path / "WIDE.CSV.GZ").write_bytes(gzip.compress(frame.to_csv(index=False).encode("utf-16")))
    with pytest.raises(DataError, match=r"set data.encoding=utf-16"):
        built(tmp_path / "WIDE.CSV.GZ", target="y")
