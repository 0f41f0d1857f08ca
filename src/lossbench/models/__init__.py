"""Models: built with the input shape from the data module and the output width from the loss."""

from lossbench.models.mlp import MLP

__all__ = ["MLP"]
