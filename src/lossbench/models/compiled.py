"""``model.compile=true``: one static-shape graph for the training step and one for evaluation.

:func:`compile_network` wraps the network in ``torch.compile`` with static shapes. :class:`CompiledSteps`
is what the LightningModule calls with such a network:

- the training step ``loss(network(x), y)`` is compiled as one graph (the loss fused with the network) for
  the training batch shape, the shape of the first training batch. A batch of another shape (the last,
  smaller batch of an epoch) runs eagerly, so it neither recompiles nor turns the batch dimension dynamic.
- evaluation (validation, test) pads a smaller batch with zeros up to the largest evaluation batch seen
  and keeps the outputs of its real samples. In evaluation mode no network here mixes samples (batch
  norm uses its running statistics, dropout is off), so each real sample's output is unchanged.

So a fit compiles once per mode (training, evaluation) in its first epoch and never after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lossbench.argument_checks import located

#: the attribute of a compiled network holding its :class:`CompileOptions`
OPTIONS_ATTR = "lossbench_compile"


@dataclass(frozen=True)
class CompileOptions:
    """``torch.compile`` options of ``model.compile_mode`` / ``model.compile_backend``.

    ``mode``: ``None`` (torch's default), ``reduce-overhead`` (CUDA graphs: small models on a GPU),
    ``max-autotune``, ...; ``backend``: a backend name (``inductor``, ``aot_eager``, ...) or the dotted
    path of a backend callable (``mypkg.backends.counting``).
    """

    mode: str | None = None
    backend: str = "inductor"

    def compile(self, fn: Any) -> Any:
        backend = located(self.backend) if "." in self.backend else self.backend
        return torch.compile(fn, dynamic=False, mode=self.mode, backend=backend)


def compile_network(model: nn.Module, options: CompileOptions) -> nn.Module:
    """``torch.compile(model)`` with static shapes, marked for :func:`compiled_steps`."""
    compiled = options.compile(model)
    setattr(compiled, OPTIONS_ATTR, options)  # torch.compile's wrapper sets it on the network itself
    return compiled


def compiled_steps(model: nn.Module, loss: nn.Module) -> CompiledSteps | None:
    """The compiled training and evaluation steps of a network from :func:`compile_network`, else ``None``."""
    options = getattr(model, OPTIONS_ATTR, None)
    return CompiledSteps(model, loss, options) if isinstance(options, CompileOptions) else None


class CompiledSteps:
    """The training loss and the evaluation outputs of ``model`` with static shapes (module docstring).

    Not an ``nn.Module``: it holds references to the LightningModule's own ``model`` and ``loss``.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, options: CompileOptions) -> None:
        self.model, self.loss = model, loss
        #: CUDA graphs (``reduce-overhead``) reuse their output memory: each step is marked as a new one
        #: and its outputs are copied, as the test predictions and the recalibration keep them
        self.cuda_graphs = options.mode is not None and "reduce-overhead" in options.mode
        self._train = options.compile(self._loss_of)
        self.train_shape: torch.Size | None = None
        self.eval_size = 0

    def _loss_of(self, x: Tensor, y: Tensor) -> Tensor:
        return self.loss(self.model(x), y)

    def train_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """``loss(model(x), y)``: compiled for the training batch shape, eager for any other shape."""
        if self.train_shape is None:
            self.train_shape = x.shape
        if x.shape == self.train_shape:
            if not self.cuda_graphs:
                return self._train(x, y)
            torch.compiler.cudagraph_mark_step_begin()
            return self._train(x, y).clone()
        with torch.compiler.set_stance("force_eager"):
            return self._loss_of(x, y)

    def outputs(self, x: Tensor) -> Tensor:
        """``model(x)`` in evaluation, ``x`` padded to the largest evaluation batch seen (one graph).

        It runs under ``no_grad`` outside inference mode, on an ordinary tensor, whether Lightning
        evaluates under ``no_grad`` (validation in ``fit``) or in inference mode (``test``): torch.compile
        guards on both, so validation and test share one graph.
        """
        n = len(x)
        self.eval_size = max(self.eval_size, n)
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.inference_mode(False), torch.no_grad():
            if n == self.eval_size:
                outputs = self.model(x.clone() if x.is_inference() else x)
            else:
                padding = x.new_zeros((self.eval_size - n, *x.shape[1:]))
                padded = torch.cat([x, padding]).contiguous(memory_format=_memory_format(x))
                outputs = self.model(padded)[:n]
        return outputs.clone() if self.cuda_graphs else outputs


def _memory_format(x: Tensor) -> torch.memory_format:
    """``channels_last`` for a 4-D batch stored that way (the padded batch keeps its strides)."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
