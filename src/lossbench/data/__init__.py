"""Data modules: in-memory tensors batched by slicing."""

from lossbench.data.base import InMemoryDataModule
from lossbench.data.loader import EpochSampler, TensorBatchLoader
from lossbench.data.sklearn import SklearnDataModule

__all__ = ["EpochSampler", "InMemoryDataModule", "SklearnDataModule", "TensorBatchLoader"]
