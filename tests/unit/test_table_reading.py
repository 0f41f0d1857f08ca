"""data=table: reading a file as written — its header, separators, encodings and number formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.data.table import TableDataModule
from lossbench.data.table_io import read_table, repeated_columns
from lossbench.errors import ConfigError, DataError
from lossbench.task import Task


def built(path: Path, **options) -> TableDataModule:
    dm = TableDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


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
    with pytest.raises(DataError) as err:
        built(path, target="price")
    text = str(err.value)
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
    with pytest.raises(DataError) as err:
        built(path, target="rating")
    assert "data.decimal" not in str(err.value) and "\"data.thousands=','\"" in str(err.value)
    with pytest.raises(ConfigError, match=r"data.thousands=',' is data.decimal too"):
        built(path, target="price", thousands=",", decimal=",")
