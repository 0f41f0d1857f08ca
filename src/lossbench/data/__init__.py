"""Data modules: in-memory sets (tensors batched by slicing), tables, image folders streamed from disk.

The classes load on first use (:pep:`562`), so that the table checks (:mod:`.table_checks`) and the
other torch-free modules of this package can run before torch and Lightning are imported.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module defining it
_DEFINED_IN = {
    "EpochSampler": "lossbench.data.loader",
    "InMemoryDataModule": "lossbench.data.base",
    "SklearnDataModule": "lossbench.data.sklearn",
    "SyntheticClassificationDataModule": "lossbench.data.synthetic",
    "SyntheticRegressionDataModule": "lossbench.data.synthetic",
    "TensorBatchLoader": "lossbench.data.loader",
    "TorchEpochSampler": "lossbench.data.loader",
    "TorchvisionDataModule": "lossbench.data.vision",
}

__all__ = sorted(_DEFINED_IN)


def __getattr__(name: str) -> Any:
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_DEFINED_IN[name]), name)
