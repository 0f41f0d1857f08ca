"""K replicas of :class:`lossbench.models.mlp.MLP` evaluated together with batched matrix products.

The replicas' weights are stacked on a leading replica dimension
(:class:`~lossbench.packed.stacking.PackedModel`: each replica's ``nn.Linear`` parameters are views of
its slices) and each layer is one ``torch.baddbmm`` over all replicas (Packed-Ensembles, Laurent et al.,
ICLR 2023; PyTorch's model ensembling with ``torch.func.stack_module_state``).
"""

from __future__ import annotations

from torch import Tensor, nn

from lossbench.models.mlp import MLP
from lossbench.packed.stacking import PackedModel


class PackedMLP(PackedModel):
    """K :class:`~lossbench.models.mlp.MLP` replicas of one architecture (layer widths and dropout; only
    the head's width, which the loss sets, may differ), evaluated as one model on ``[K, B, F]``.

    Args: as :class:`~lossbench.packed.stacking.PackedModel`.
    """

    replica_type = MLP

    @property
    def head_name(self) -> str:  # type: ignore[override]
        return f"net.{len(self.layers(0)) - 1}"

    def layers(self, k: int = 0) -> nn.Sequential:
        """Replica ``k``'s ``Flatten → (Linear → ReLU → Dropout)* → Linear`` stack."""
        return self.replicas[k].net

    def stacked(self, index: int) -> tuple[Tensor, Tensor]:
        """The stacked weights ``[K, out, in]`` and biases ``[K, out]`` of layer ``index`` of ``net``."""
        return self.param(f"net.{index}.weight"), self.param(f"net.{index}.bias")

    def packed_forward(self, x: Tensor, shared: bool) -> Tensor:
        k = self.num_replicas
        h = x.unsqueeze(0).expand(k, *x.shape) if shared else x
        h = h.reshape(k, h.shape[1], -1)  # nn.Flatten of each replica's batch
        for layer in self.layers(0):
            if isinstance(layer, nn.Linear):
                h = self.linear(layer, h)
            elif isinstance(layer, nn.ReLU):
                h = h.relu()
            elif isinstance(layer, nn.Dropout):
                h = self.dropout(h, layer.p)
            elif not isinstance(layer, nn.Flatten):
                raise TypeError(f"PackedMLP cannot pack a {type(layer).__name__} layer")
        return h
