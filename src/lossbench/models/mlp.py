"""Multi-layer perceptron for tabular or flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    """``Linear → ReLU → Dropout`` blocks and a linear head.

    Args:
        input_shape: shape of one sample (flattened); supplied by the data module.
        num_outputs: width of the head; supplied by the loss's task contract.
        hidden_dims: widths of the hidden layers.
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden_dims: Sequence[int] = (256, 256),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
