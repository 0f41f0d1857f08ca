"""The layers of K packed convolutional replicas: grouped convolutions and per-replica batch norm.

Packed-Ensembles (Laurent et al., "Packed-Ensembles for Efficient Uncertainty Estimation", ICLR 2023)
evaluate K convolutional networks as one whose channels are the K replicas' channels side by side:
activations ``[B, K·C, H, W]``, replica ``k``'s channels ``k·C … (k+1)·C − 1``. Then

- a convolution is one grouped convolution: the stacked weight ``[K, out, in/g, kh, kw]`` viewed as
  ``[K·out, in/g, kh, kw]`` with ``groups = K·g``, so output channel block ``k`` is replica ``k``'s
  convolution of its own input channels;
- batch norm normalises each channel by its own batch statistics, so ``F.batch_norm`` over the ``K·C``
  channels with the stacked running statistics viewed as ``[K·C]`` is every replica's own batch norm, and
  its in-place update of the running statistics is each replica's own update (the replicas' buffers are
  views of the stacked ones); ``num_batches_tracked`` is stacked ``[K]``, one count per replica;
- ReLU, max-pooling and average pooling act on each channel alone;
- after ``Flatten`` (or global pooling) the activations are laid out ``[K, B, F]`` and a linear layer is
  one ``baddbmm`` (as :class:`~lossbench.packed.mlp.PackedMLP`), dropout one mask per replica from its own
  stream (:class:`~lossbench.packed.dropout.ReplicaDropout`).

:class:`PackedConvNet` evaluates such layers of replica 0's structure for all replicas; a subclass per
model family (:mod:`lossbench.packed.cnn`, :mod:`lossbench.packed.resnet`) walks its model's forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossbench.packed.stacking import PackedModel


class PackedConvNet(PackedModel):
    """K convolutional replicas evaluated as one model of grouped layers (see the module's docstring)."""

    #: the leaf layers :meth:`layer` packs (besides ``nn.MaxPool2d`` without ``return_indices``)
    LAYERS = (
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.AdaptiveAvgPool2d,
        nn.Flatten,
        nn.Linear,
        nn.Dropout,
        nn.Identity,
    )

    def check_same_architecture(self) -> None:
        """Also raise ``ValueError`` for a layer that is not packed (see :attr:`LAYERS`)."""
        super().check_same_architecture()
        for name, module in self.replicas[0].named_modules():
            if list(module.children()):
                continue
            pooling = isinstance(module, nn.MaxPool2d) and not module.return_indices
            if not pooling and not isinstance(module, self.LAYERS):
                raise ValueError(f"{name}: a {type(module).__name__} layer is not packed")
            if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
                raise ValueError(f"{name}: padding_mode={module.padding_mode} is not packed (zeros is)")
            if isinstance(module, nn.BatchNorm2d) and (
                module.momentum is None or not module.track_running_stats
            ):
                raise ValueError(f"{name}: batch norm needs running statistics with a momentum to be packed")

    def channels(self, x: Tensor, shared: bool) -> Tensor:
        """Images ``[K, B, C, H, W]`` (``shared``: ``[B, C, H, W]``, all replicas') as ``[B, K·C, H, W]``."""
        k = self.num_replicas
        if shared:
            return x.repeat(1, k, 1, 1)
        return x.transpose(0, 1).reshape(x.shape[1], k * x.shape[2], *x.shape[3:])

    def per_replica(self, h: Tensor) -> Tensor:
        """Activations ``[B, K·C, …]`` as each replica's flattened ``[K, B, C·…]`` (its ``nn.Flatten``)."""
        return h.reshape(h.shape[0], self.num_replicas, -1).transpose(0, 1).contiguous()

    def conv(self, module: nn.Conv2d, h: Tensor) -> Tensor:
        """Replica 0's ``module`` for every replica: one convolution with ``groups = K·module.groups``."""
        name = self.names[module]
        weight = self.param(f"{name}.weight")
        bias = self.param(f"{name}.bias").reshape(-1) if module.bias is not None else None
        return F.conv2d(
            h,
            weight.reshape(-1, *weight.shape[2:]),
            bias,
            module.stride,
            module.padding,
            module.dilation,
            self.num_replicas * module.groups,
        )

    def batch_norm(self, module: nn.BatchNorm2d, h: Tensor) -> Tensor:
        """Replica 0's ``module`` for every replica: its own batch statistics per channel in training (each
        replica's running statistics updated in place, its count of batches too), its running ones in eval."""
        name = self.names[module]
        weight = self.param(f"{name}.weight").reshape(-1) if module.affine else None
        bias = self.param(f"{name}.bias").reshape(-1) if module.affine else None
        mean, var = self.buffer(f"{name}.running_mean"), self.buffer(f"{name}.running_var")
        if not self.training or not self.frozen:
            if self.training:
                self.buffer(f"{name}.num_batches_tracked").add_(1)
            return F.batch_norm(
                h, mean.view(-1), var.view(-1), weight, bias, self.training, module.momentum, module.eps
            )
        # failed replicas keep their statistics: update copies, then take the live replicas' parts
        live = self.live(h.device)
        new_mean, new_var = mean.clone(), var.clone()
        out = F.batch_norm(
            h, new_mean.view(-1), new_var.view(-1), weight, bias, True, module.momentum, module.eps
        )
        with torch.no_grad():
            mean.copy_(torch.where(live[:, None], new_mean, mean))
            var.copy_(torch.where(live[:, None], new_var, var))
            self.buffer(f"{name}.num_batches_tracked").add_(live.long())
        return out

    def layer(self, module: nn.Module, h: Tensor) -> Tensor:
        """Replica 0's ``module`` (a layer or an ``nn.Sequential`` of layers) for every replica."""
        if isinstance(module, nn.Sequential):
            for child in module:
                h = self.layer(child, h)
            return h
        if isinstance(module, nn.Conv2d):
            return self.conv(module, h)
        if isinstance(module, nn.BatchNorm2d):
            return self.batch_norm(module, h)
        if isinstance(module, nn.ReLU):
            return torch.relu(h)
        if isinstance(module, nn.MaxPool2d) and not module.return_indices:
            return F.max_pool2d(
                h, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode
            )
        if isinstance(module, nn.AdaptiveAvgPool2d):
            return F.adaptive_avg_pool2d(h, module.output_size)
        if isinstance(module, nn.Flatten):
            return self.per_replica(h)
        if isinstance(module, (nn.Linear, nn.Dropout)) and h.dim() != 3:
            raise TypeError(
                f"{type(self).__name__} packs {type(module).__name__} layers after the flatten only, not on "
                f"[batch, replicas x channels, H, W] activations"
            )
        if isinstance(module, nn.Linear):
            return self.linear(module, h)
        if isinstance(module, nn.Dropout):
            return self.dropout(h, module.p)
        if isinstance(module, nn.Identity):
            return h
        raise TypeError(f"{type(self).__name__} cannot pack a {type(module).__name__} layer")
