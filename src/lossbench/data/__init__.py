"""Data modules: in-memory sets (tensors batched by slicing), tables, image folders streamed from disk."""

from lossbench.data.base import InMemoryDataModule
from lossbench.data.loader import EpochSampler, TensorBatchLoader, TorchEpochSampler
from lossbench.data.sklearn import SklearnDataModule
from lossbench.data.synthetic import SyntheticClassificationDataModule, SyntheticRegressionDataModule
from lossbench.data.vision import TorchvisionDataModule

__all__ = [
    "EpochSampler",
    "InMemoryDataModule",
    "SklearnDataModule",
    "SyntheticClassificationDataModule",
    "SyntheticRegressionDataModule",
    "TensorBatchLoader",
    "TorchEpochSampler",
    "TorchvisionDataModule",
]
