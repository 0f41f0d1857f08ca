"""Data modules: in-memory tensors batched by slicing, with stressors on the training split."""

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
