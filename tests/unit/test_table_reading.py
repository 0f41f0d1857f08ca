"""data=table: reading a file as written — its header, separators, encodings and number formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossbench.data.table import TableDataModule
from lossbench.data.table_io import repeated_columns
from lossbench.errors import DataError


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
