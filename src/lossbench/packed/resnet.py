"""K replicas of a ResNet evaluated together as one model of grouped layers: the CIFAR ResNet
(:class:`lossbench.models.resnet.CifarResNet`, option-A or option-B shortcuts) and torchvision's ResNet
with basic blocks (:func:`lossbench.models.resnet.resnet18_cifar`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.resnet import BasicBlock as TorchvisionBlock
from torchvision.models.resnet import ResNet

from lossbench.models.resnet import BasicBlock, CifarResNet
from lossbench.packed.convnet import PackedConvNet


class PackedCifarResNet(PackedConvNet):
    """K :class:`~lossbench.models.resnet.CifarResNet` replicas (see :mod:`lossbench.packed.convnet`).

    An option-A shortcut subsamples by the stride and zero-pads each replica's channels on both sides, as
    its block does: activations viewed ``[B, K, C, H, W]`` and padded on ``C``.

    Args: as :class:`~lossbench.packed.stacking.PackedModel`.
    """

    replica_type = CifarResNet
    head_name = "head"

    def shortcut(self, block: BasicBlock, x: Tensor) -> Tensor:
        """``block``'s shortcut of ``x`` ``[B, K·C, H, W]`` for every replica."""
        if block.project is not None:
            return self.layer(block.project, x)
        if block.stride == 1 and not block.pad:
            return x
        x = x[:, :, :: block.stride, :: block.stride]
        b, _, h, w = x.shape
        x = x.reshape(b, self.num_replicas, -1, h, w)
        x = F.pad(x, (0, 0, 0, 0, block.pad // 2, block.pad - block.pad // 2))
        return x.reshape(b, -1, h, w)

    def block(self, block: BasicBlock, x: Tensor) -> Tensor:
        out = torch.relu(self.layer(block.bn1, self.layer(block.conv1, x)))
        out = self.layer(block.bn2, self.layer(block.conv2, out))
        return torch.relu(out + self.shortcut(block, x))

    def packed_forward(self, x: Tensor, shared: bool) -> Tensor:
        model = self.replicas[0]
        h = self.layer(model.stem, self.channels(x, shared))
        for block in model.blocks:
            h = self.block(block, h)
        h = self.per_replica(F.adaptive_avg_pool2d(h, 1))
        return self.linear(model.head, h)


class PackedTorchvisionResNet(PackedConvNet):
    """K replicas of torchvision's ``ResNet`` with basic blocks (ResNet-18/34; ``resnet18_cifar``'s 3×3
    stem without max-pool included), as its ``forward``: ``conv1 → bn1 → relu → maxpool → layer1…4 →
    avgpool → flatten → fc``, each block ``relu(bn2(conv2(relu(bn1(conv1 x)))) + downsample(x))``.

    Args: as :class:`~lossbench.packed.stacking.PackedModel`.
    """

    replica_type = ResNet
    head_name = "fc"

    def check_same_architecture(self) -> None:
        super().check_same_architecture()
        model = self.replicas[0]
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in stage:
                if type(block) is not TorchvisionBlock:
                    raise ValueError(f"{type(self).__name__} packs basic blocks, not {type(block).__name__}")

    def block(self, block: TorchvisionBlock, x: Tensor) -> Tensor:
        out = torch.relu(self.layer(block.bn1, self.layer(block.conv1, x)))
        out = self.layer(block.bn2, self.layer(block.conv2, out))
        identity = self.layer(block.downsample, x) if block.downsample is not None else x
        return torch.relu(out + identity)

    def packed_forward(self, x: Tensor, shared: bool) -> Tensor:
        model = self.replicas[0]
        h = self.channels(x, shared)
        for layer in (model.conv1, model.bn1, model.relu, model.maxpool):
            h = self.layer(layer, h)
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in stage:
                h = self.block(block, h)
        h = self.per_replica(self.layer(model.avgpool, h))
        return self.linear(model.fc, h)
