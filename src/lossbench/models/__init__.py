"""Models: built with the input shape from the data module and the output width from the loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lossbench.models.cnn import CNN
from lossbench.models.mlp import MLP
from lossbench.models.resnet import CifarResNet, resnet18_cifar

__all__ = ["CNN", "MLP", "CifarResNet", "build_model", "resnet18_cifar"]

#: keys of the ``model`` config consumed here, not passed to the model's constructor
BUILD_OPTIONS = ("compile", "channels_last")


def build_model(cfg: DictConfig, input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """Instantiate ``cfg`` (a ``model`` config) and apply the options every model shares.

    ``compile: true`` wraps the model in ``torch.compile`` (compiled on the first batch);
    ``channels_last: true`` stores 4-D conv weights in NHWC memory format (faster convolutions with
    tensor cores, e.g. with ``trainer.precision=bf16-mixed``); activations follow the weights' format.
    """
    options = {k: bool(cfg.get(k) or False) for k in BUILD_OPTIONS}
    model_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in BUILD_OPTIONS])
    model = instantiate(model_cfg, input_shape=tuple(input_shape), num_outputs=num_outputs)
    return _apply(model, **options)


def _apply(model: nn.Module, compile: bool = False, channels_last: bool = False) -> nn.Module:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    return model
