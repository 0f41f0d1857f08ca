"""``model.compile=true``: one graph for the training step (network and loss, no graph break) and one for
evaluation, both compiled in the first epoch; later epochs and the test run reuse them.

Graphs are counted with a torch.compile backend (``model.compile_backend``): torch calls a backend once per
graph it compiles, so a graph break (two graphs for one step) and a recompile both show up as calls. The
counting backend runs each graph eagerly, which keeps these fits fast; one fit goes through inductor with
``torch.compiler.set_stance("fail_on_recompile")`` from the second epoch on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import DictConfig

from lossbench.build import build_data, build_module

#: one entry per graph the counting backend was given: whether it was traced with autograd on
GRAPHS: list[bool] = []
BACKEND = f"{__name__}.counting_backend"


def counting_backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
    """A torch.compile backend that records each graph and runs it as traced."""
    GRAPHS.append(torch.is_grad_enabled())
    return gm.forward


class GraphCounts(L.Callback):
    """Graphs compiled by the first training step, by the first epoch and by the whole fit."""

    def __init__(self, fail_on_recompile: bool = False) -> None:
        self.fail_on_recompile = fail_on_recompile
        self.counts: dict[str, int] = {}
        self.batch_sizes: set[int] = set()

    def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, batch_idx: int) -> None:
        self.batch_sizes.add(len(batch[0]))
        if trainer.current_epoch == 0 and batch_idx == 0:
            self.counts["before_first_step"] = len(GRAPHS)

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, *args: Any) -> None:
        if trainer.current_epoch == 0 and "first_step" not in self.counts:
            self.counts["first_step"] = len(GRAPHS) - self.counts["before_first_step"]

    def on_train_epoch_start(self, trainer: L.Trainer, module: Any) -> None:
        if trainer.current_epoch == 1:
            self.counts["after_epoch_1"] = len(GRAPHS)
            if self.fail_on_recompile:
                torch.compiler.set_stance("fail_on_recompile")


def fit_compiled(
    make_cfg: Callable[..., DictConfig], *overrides: str, fail_on_recompile: bool = False
) -> tuple[GraphCounts, L.Trainer]:
    """Two epochs and a test run with ``model.compile=true``: batches of 64 with a smaller last one (digits
    made long-tailed: 370 training samples), evaluation in batches of 64 with a smaller last one too."""
    cfg = make_cfg(
        "model.compile=true",
        "data.imbalance_factor=20",
        "data.eval_batch_size=64",
        "trainer.max_epochs=2",
        *overrides,
    )
    dm = build_data(cfg)
    _, _, module = build_module(cfg, dm)
    counts = GraphCounts(fail_on_recompile)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[counts],
    )
    torch.compiler.reset()
    GRAPHS.clear()
    try:
        trainer.fit(module, datamodule=dm)
        counts.counts["after_fit"] = len(GRAPHS)
        trainer.test(module, datamodule=dm, verbose=False)
        counts.counts["after_test"] = len(GRAPHS)
    finally:
        torch.compiler.set_stance("default")
        torch.compiler.reset()
    return counts, trainer


MODELS = {
    "mlp": ("model=mlp",),
    "cnn": ("model=cnn", "data.as_images=true"),
    "resnet18": ("model=resnet18", "data.as_images=true"),
}


# each loss in the small networks; ResNet-18's blocks with one (a loss is part of the step's graph alike)
CASES = [(model, loss) for model in ("mlp", "cnn") for loss in ("ce", "focal")] + [("resnet18", "ce")]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "loss"), CASES)
def test_compiled_fit_has_one_training_graph_and_no_recompile_after_epoch_1(make_cfg, model, loss):
    counts, trainer = fit_compiled(
        make_cfg, *MODELS[model], f"loss={loss}", f"model.compile_backend={BACKEND}"
    )
    assert trainer.current_epoch == 2
    assert len(counts.batch_sizes) == 2  # full batches and a smaller last one
    c = counts.counts
    assert c["first_step"] == 1, "the training step (network and loss) is one graph: no graph break"
    assert c["after_fit"] == c["after_epoch_1"] == 2  # training and evaluation, both in the first epoch
    assert c["after_test"] == c["after_fit"]  # the test run reuses the evaluation graph
    assert sorted(GRAPHS) == [False, True]  # evaluation without autograd, training with it


@pytest.mark.slow
def test_compiled_fit_with_inductor_does_not_recompile_after_epoch_1(make_cfg):
    counts, trainer = fit_compiled(make_cfg, "model=mlp", "loss=focal", fail_on_recompile=True)
    assert trainer.current_epoch == 2  # fail_on_recompile raises on any recompile in epoch 2
    assert torch.isfinite(trainer.callback_metrics["test/loss"])
