"""A small LeNet-style convolutional network for 28×28 and 32×32 images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lossbench.errors import ConfigError


class CNN(nn.Module):
    """``[conv5×5 → ReLU → max-pool 2]`` × 2 (padding 2, so 28/32 px → 7/8 px), then an MLP head.

    Args:
        input_shape: ``(C, H, W)`` of one image; supplied by the data module (channels from here).
        num_outputs: width of the head; supplied by the loss's task contract.
        channels: output channels of the two conv blocks.
        hidden: width of the hidden fully connected layer.
        dropout: dropout before the head.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                "model=cnn needs images (C, H, W), but the data gives samples of shape "
                f"{tuple(input_shape)}: use model=mlp for tabular data (for data=digits, data.as_images=true "
                "gives 1x8x8 images)"
            )
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
