"""Which packed model packs which model: one class per model family (timm style)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lossbench.packed.cnn import PackedCNN
from lossbench.packed.mlp import PackedMLP
from lossbench.packed.resnet import PackedCifarResNet, PackedTorchvisionResNet
from lossbench.packed.stacking import PackedModel

#: the packed model of each model class, in the order they are tried
PACKED_MODELS: tuple[type[PackedModel], ...] = (
    PackedMLP,
    PackedCNN,
    PackedCifarResNet,
    PackedTorchvisionResNet,
)
#: the ``model._target_`` of the model configs that pack (``conf/model``: mlp, cnn, resnet32, resnet18)
PACKED_TARGETS = (
    "lossbench.models.mlp.MLP",
    "lossbench.models.cnn.CNN",
    "lossbench.models.resnet.CifarResNet",
    "lossbench.models.resnet.resnet18_cifar",
)


def packed_class(model: nn.Module) -> type[PackedModel]:
    """The packed model class for replicas like ``model``; ``TypeError`` when there is none."""
    for cls in PACKED_MODELS:
        if type(model) is cls.replica_type:
            return cls
    raise TypeError(f"no packed version of {type(model).__qualname__} (packed: mlp, cnn, resnet32, resnet18)")


def packed_model(
    models: Sequence[nn.Module], seeds: Sequence[int], rng_states: Sequence[Tensor] | None = None
) -> PackedModel:
    """The replicas ``models`` (their runs' ``seeds`` and dropout ``rng_states``) as one packed model."""
    return packed_class(models[0])(models, seeds, rng_states)
