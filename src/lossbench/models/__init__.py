"""Models: built with the input shape from the data module and the output width from the loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lossbench.models.cnn import CNN
from lossbench.models.compiled import CompiledSteps, CompileOptions, compile_network, compiled_steps
from lossbench.models.mlp import MLP
from lossbench.models.resnet import CifarResNet, resnet18_cifar

__all__ = [
    "CNN",
    "MLP",
    "CifarResNet",
    "CompileOptions",
    "CompiledSteps",
    "build_model",
    "compiled_steps",
    "resnet18_cifar",
]

#: keys of the ``model`` config consumed here, not passed to the model's constructor
BUILD_OPTIONS = ("compile", "compile_mode", "compile_backend", "channels_last")


def build_model(cfg: DictConfig, input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """Instantiate ``cfg`` (a ``model`` config) and apply the options every model shares.

    ``compile: true`` wraps the model in ``torch.compile`` with static shapes (compiled on the first
    batch; ``compile_mode`` and ``compile_backend`` are its ``mode`` and ``backend``, see
    :mod:`lossbench.models.compiled`, which also compiles the loss with it in the training step);
    ``channels_last: true`` stores 4-D conv weights in NHWC memory format (faster convolutions with
    tensor cores, e.g. with ``trainer.precision=bf16-mixed``); activations follow the weights' format.
    """
    model_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in BUILD_OPTIONS])
    model = instantiate(model_cfg, input_shape=tuple(input_shape), num_outputs=num_outputs)
    if cfg.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    if cfg.get("compile"):
        options = CompileOptions(cfg.get("compile_mode"), cfg.get("compile_backend") or "inductor")
        model = compile_network(model, options)
    return model
