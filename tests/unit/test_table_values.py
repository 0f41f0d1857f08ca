"""data=table: numeric values as the checks name them — placeholders far beyond the rest, and the
``data.na_values`` suggested to mark them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.data.table import TableDataModule
from lossbench.data.table_io import read_table
from lossbench.data.table_values import note_far_values
from lossbench.errors import DataError


def built(path: Path, **options) -> TableDataModule:
    dm = TableDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


def test_suggested_na_values_read_back_by_hydra_mark_the_same_numbers(tmp_path, caplog):
    """``99999999`` and ``1.7976931348623157e308`` are suggested as written in full: Hydra reads the
    suggestion back as the same numbers, which then mark those cells missing and the check passes."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    def read_back(text: str) -> list:
        override = re.findall(r"data\.na_values=\[[^\]]*\]", text)[-1].replace("'", "")
        return OverridesParser.create().parse_overrides([override])[0].value()

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60)})
    frame.loc[[2, 9], "x"] = 99999999
    frame.loc[4, "y"] = np.finfo(np.float64).max
    path = tmp_path / "placeholders.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="lossbench"), pytest.raises(DataError) as err:
        built(path, target="y")
    said = [r.getMessage() for r in caplog.records if "'x' holds 2 value(s)" in r.getMessage()]
    assert said and "data.na_values=[99999999]" in said[0], said
    assert "data.na_values=[1.7976931348623157e308]" in str(err.value)
    na_values = read_back(said[0]) + read_back(str(err.value))
    assert na_values == [99999999, np.finfo(np.float64).max]
    read = read_table(path, na_values=[str(v) for v in na_values])
    assert read["x"].isna().sum() == 2 and read["y"].isna().sum() == 1
    dm = built(path, target="y", na_values=na_values, impute="median", drop_missing_target=True)
    assert dm.missing_target_rows == 1


def test_an_integer_placeholder_beyond_2_53_is_suggested_as_the_file_writes_it(tmp_path, caplog):
    """pandas matches an integer column's ``na_values`` as text: 9007199254740993 as a float is ...992."""
    frame = pd.DataFrame({"x": [50 + i % 7 for i in range(60)], "y": [0, 1] * 30})
    frame.loc[[3, 8], "x"] = 9007199254740993
    path = tmp_path / "ints.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        built(path, target="y")
    assert "data.na_values=[9007199254740993]" in caplog.text, caplog.text
    assert read_table(path, na_values=["9007199254740993"])["x"].isna().sum() == 2


def test_heavy_tails_at_scale_are_not_named_and_placeholders_are(caplog):
    """200,000 follower counts (rounded lognormal(5, 3.5)) or Pareto(0.8) values reach far beyond 10⁶ MADs,
    in many values with no gap: no warning; a repeated ``1e30`` or three ``1e30``-scale values past a gap
    among N(0, 1) values are placeholders."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=200_000)
    columns = {
        "followers": np.round(rng.lognormal(5, 3.5, 200_000)),
        "pareto": rng.pareto(0.8, 200_000),
        "once": np.where(np.arange(200_000) % 1000 == 0, 1e30, normal),
        "spread": np.concatenate([normal[:-3], [1e30, 2e30, 3e30]]),
    }
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        for name, values in columns.items():
            note_far_values(f"column {name!r}", name, values, False, [])
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert not any("'followers'" in m or "'pareto'" in m for m in said), said
    assert any("column 'once' holds 200 value(s) many orders of magnitude" in m for m in said), said
    assert any("column 'spread' holds 3 value(s)" in m and "[1e30,2e30,3e30]" in m for m in said), said


def test_an_unsigned_placeholder_beyond_int64_is_still_named(tmp_path, caplog):
    path = tmp_path / "unsigned.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(1, 40)) + "18446744073709551615,0\n")
    with caplog.at_level(logging.WARNING, logger="lossbench"):
        built(path, target="y", task="classification")
    assert "many orders of magnitude beyond the rest (1.8446744073709552e19" in caplog.text, caplog.text
