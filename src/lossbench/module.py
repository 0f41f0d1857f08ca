"""The LightningModule that trains any model with any lossbench loss."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lossbench.errors import NonFiniteLossError
from lossbench.losses.base import BenchLoss, Task
from lossbench.metrics import classification_metrics, regression_metrics

STAGES = ("val", "test")


class LossBenchModule(L.LightningModule):
    """Trains ``model`` with ``loss`` and logs the loss and task metrics per epoch.

    Metrics are computed from the loss's :meth:`~BenchLoss.probabilities` and
    :meth:`~BenchLoss.predictions`, never from the loss value, so every loss is judged alike. All
    metrics are torchmetrics objects updated each step and computed once per epoch (synchronised
    across DDP ranks by torchmetrics), so a step does no Python logging. The one per-step device sync is
    the finiteness check of the loss, made before the optimizer step so that a NaN never reaches the
    weights (a deliberate safety cost on GPU; free on CPU).

    Args:
        model: maps a batch of inputs to raw outputs.
        loss: the loss to train with.
        optimizer: partial taking the parameters (from Hydra ``_partial_: true``).
        scheduler: optional partial taking the optimizer.
        scheduler_interval: ``epoch`` or ``step``.
        task: the data set's task.
        num_classes: classes (classification).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: BenchLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        task: Task,
        num_classes: int | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.task = Task(task)
        self.classification = self.task is Task.CLASSIFICATION
        self.train_loss = MeanMetric()
        self._train_loss_sum: Tensor | None = None
        self._train_loss_weight = 0
        self.stage_loss = nn.ModuleDict({s: MeanMetric() for s in STAGES})
        if self.classification:
            assert num_classes is not None, "classification needs num_classes"
            labels, probs = classification_metrics(num_classes)
            self.label_metrics = nn.ModuleDict({s: labels.clone(prefix=f"{s}/") for s in STAGES})
            self.prob_metrics = nn.ModuleDict({s: probs.clone(prefix=f"{s}/") for s in STAGES})
        else:
            reg = regression_metrics()
            self.value_metrics = nn.ModuleDict({s: reg.clone(prefix=f"{s}/") for s in STAGES})

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    # --- training -----------------------------------------------------------------------------------
    def training_step(self, batch: tuple, batch_idx: int) -> Tensor:
        x, y, *ddp_scale = batch
        loss = self.loss(self.model(x), y)
        if not torch.isfinite(loss):  # before the optimizer step, so the weights stay good
            raise NonFiniteLossError(
                f"{type(self.loss).__name__} returned {loss.item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}): lower the learning rate (optim.optimizer.lr), check the "
                "data for NaN/Inf, or clip gradients (trainer.gradient_clip_val=1.0); the last good "
                "checkpoint is checkpoints/last.ckpt"
            )
        if ddp_scale:  # DDP: makes the averaged gradient that of the global batch (see TensorBatchLoader)
            self._accumulate_train_loss(loss.detach(), len(y) if ddp_scale[0] else 0)
            return loss * ddp_scale[0]
        self._accumulate_train_loss(loss.detach(), len(y))
        return loss

    def _accumulate_train_loss(self, loss: Tensor, weight: int) -> None:
        """A running weighted sum on the device (one fused tensor op, no sync, no metric bookkeeping per
        step); handed to the ``train_loss`` metric once per epoch, which syncs it across DDP ranks."""
        if weight:
            self._train_loss_sum = (
                loss * weight
                if self._train_loss_sum is None
                else self._train_loss_sum.add(loss, alpha=weight)
            )
            self._train_loss_weight += weight

    def on_train_epoch_start(self) -> None:
        self._train_loss_sum, self._train_loss_weight = None, 0
        self.loss.on_train_epoch_start(self.current_epoch, self.trainer.max_epochs)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The epoch's training loss is written to the loggers at its last step, before validation and the
        # checkpoint: were it logged as an epoch value, Lightning would write it after the checkpoint, and
        # a crash in between would leave a resumed run's CSV without that epoch's row.
        if not self.trainer.is_last_batch:
            return
        if self._train_loss_sum is not None:
            weight = self._train_loss_weight
            self.train_loss.update(self._train_loss_sum / weight, weight=weight)
        self._train_loss_sum, self._train_loss_weight = None, 0
        value = self.train_loss.compute()  # synced across DDP ranks
        self.train_loss.reset()
        self.log(
            "train/loss", value, on_step=False, on_epoch=True, batch_size=1, logger=False
        )  # progress bar
        for logger in self.loggers:  # rank-zero-only loggers: no-ops on other ranks
            logger.log_metrics(
                {"train/loss": float(value), "epoch": self.current_epoch}, step=self.global_step - 1
            )

    # --- evaluation ---------------------------------------------------------------------------------
    def _eval_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        outputs = self.model(x)
        self.stage_loss[stage].update(self.loss(outputs, y).detach(), weight=len(y))
        if self.classification:
            self.label_metrics[stage].update(self.loss.predictions(outputs), y)
            self.prob_metrics[stage].update(self.loss.probabilities(outputs), y)
        elif outputs.shape[-1] == 1:
            self.value_metrics[stage].update(outputs.squeeze(-1), y.squeeze(-1))
        else:
            self.value_metrics[stage].update(outputs, y)

    def _eval_epoch_end(self, stage: str) -> None:
        values = {f"{stage}/loss": self.stage_loss[stage].compute()}
        collections = (
            (self.label_metrics[stage], self.prob_metrics[stage])
            if self.classification
            else (self.value_metrics[stage],)
        )
        for collection in collections:
            values.update(collection.compute())
            collection.reset()
        self.stage_loss[stage].reset()
        self.log_dict(values, sync_dist=True)  # already synced by torchmetrics: a no-op mean

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # --- exact resume: the random state (dropout, augmentation) continues where it stopped -----------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        random.setstate(states["python"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    # --- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }
