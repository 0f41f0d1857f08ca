"""ResNets for 32×32 images: the CIFAR ResNet-32 (He et al. 2016) and ResNet-18 with a CIFAR stem."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet18

from lossbench.errors import ConfigError, check_choice
from lossbench.models.cnn import check_images

SHORTCUTS = ("A", "B")


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (option A) or 1×1-projection (B) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.pad = 0
        self.stride = stride
        self.project: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            if shortcut == "A":  # parameter-free: subsample by the stride, zero-pad the new channels
                self.pad = out_ch - in_ch
            else:
                self.project = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
                )

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.project is not None:
            return self.project(x)
        if self.stride != 1 or self.pad:
            x = x[:, :, :: self.stride, :: self.stride]
            return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet-(6n+2) of He et al. (2016, §4.2): 3×3 conv (16), three stages of ``n`` basic
    blocks with 16/32/64 channels (stride 2 at the start of stages 2 and 3), global average pool, linear.

    ``depth=32`` (n = 5) is the ResNet-32 used by the long-tail papers (Cui et al. 2019, Cao et al.
    2019). The default shortcut is **option A** (identity with zero-padded channels, no extra
    parameters: 0.46 M parameters for ResNet-32, as in the paper and the LDAM code); ``shortcut=B`` uses
    1×1 projections where the shape changes.

    Args:
        input_shape: ``(C, H, W)``; supplied by the data module.
        num_outputs: width of the head; supplied by the loss's task contract.
        depth: 6n + 2 (20, 32, 44, 56, 110).
        width: channels of the first stage (16; stages double it).
        shortcut: ``A`` or ``B``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        depth: int = 32,
        width: int = 16,
        shortcut: str = "A",
    ) -> None:
        super().__init__()
        check_images(f"resnet{depth}", input_shape)
        check_choice("model.shortcut", shortcut, SHORTCUTS)
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ConfigError(f"model.depth={depth} is not 6n+2: use 20, 32, 44, 56 or 110")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        in_ch = width
        for stage in range(3):
            out_ch = width * 2**stage
            for i in range(n):
                blocks.append(BasicBlock(in_ch, out_ch, 2 if (stage > 0 and i == 0) else 1, shortcut))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_ch, num_outputs)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.Conv2d) else "fan_in")

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet18_cifar(input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """torchvision's ``resnet18(num_classes=...)`` with the CIFAR stem: a 3×3 stride-1 first conv and no
    max-pool (the ImageNet stem's 7×7/2 conv + max-pool would shrink 32 px to 8 px before stage 1)."""
    check_images("resnet18", input_shape)
    model = resnet18(weights=None, num_classes=num_outputs)
    model.conv1 = nn.Conv2d(input_shape[0], 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model
