"""Table files for ``data=table``: scikit-learn's wine as a user's table (``wine_frame``) and the config
helpers that point ``data=table`` at a file (``table``) and set up its data module (``built``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from sklearn.datasets import load_wine

if TYPE_CHECKING:  # importing it loads torch, which tests/conftest.py must not do before it sets threads
    from lossbench.data.table import TableDataModule

WINE_LABELS = np.array(["barolo", "grignolino", "barbera"])


def wine_frame() -> pd.DataFrame:
    """scikit-learn's wine with text labels, an id column and a categorical column."""
    frame = load_wine(as_frame=True).frame
    frame["label"] = WINE_LABELS[frame.pop("target").to_numpy()]
    frame.insert(0, "id", np.arange(len(frame)))
    frame["region"] = np.where(frame["alcohol"] > 13.0, "north", "south")
    return frame


def table(make_cfg, path: Path, *overrides: str, output_dir: Path | None = None):
    return make_cfg("data=table", f"data.path={path}", *overrides, output_dir=output_dir)


def built(make_cfg, path: Path, *overrides: str) -> TableDataModule:
    dm = instantiate(table(make_cfg, path, *overrides).data)
    dm.setup("fit")
    return dm
