"""K replicas of :class:`lossbench.models.cnn.CNN` evaluated together as one model of grouped layers."""

from __future__ import annotations

from torch import Tensor

from lossbench.models.cnn import CNN
from lossbench.packed.convnet import PackedConvNet


class PackedCNN(PackedConvNet):
    """K :class:`~lossbench.models.cnn.CNN` replicas: ``features`` as grouped convolutions and pooling on
    ``[B, K·C, H, W]``, then ``head`` (``Flatten → Linear → ReLU → Dropout → Linear``) on ``[K, B, F]``.

    Args: as :class:`~lossbench.packed.stacking.PackedModel`.
    """

    replica_type = CNN
    head_name = "head.4"

    def packed_forward(self, x: Tensor, shared: bool) -> Tensor:
        model = self.replicas[0]
        return self.layer(model.head, self.layer(model.features, self.channels(x, shared)))
