"""A small LeNet-style convolutional network for 28×28 and 32×32 images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lossbench.errors import ConfigError


def check_images(model: str, input_shape: Sequence[int], min_side: int = 1) -> tuple[int, int, int]:
    """``input_shape`` as images ``(C, H, W)`` whose sides ``model`` can pool down (at least
    ``min_side``), or a :class:`ConfigError` naming the fix."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model={model} needs images (C, H, W), but the data gives samples of shape "
            f"{tuple(input_shape)}: use model=mlp for tabular data (for data=digits, data.as_images=true "
            "gives 1x8x8 images)"
        )
    c, h, w = (int(v) for v in input_shape)
    if min(h, w) < min_side:
        raise ConfigError(
            f"model={model} pools its input down {min_side}-fold, but the images are {h}x{w}: give images "
            f"of at least {min_side}x{min_side} (e.g. data.image_size={max(min_side, 32)})"
        )
    return c, h, w


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
        c, h, w = check_images("cnn", input_shape, min_side=2 ** len(channels))
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
