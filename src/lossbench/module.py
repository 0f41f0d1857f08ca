"""The LightningModule that trains any model with any lossbench loss."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lossbench.data.loader import is_step_group
from lossbench.errors import ConfigError, NonFiniteLossError, check_choice, check_range
from lossbench.losses.base import BenchLoss, Task
from lossbench.metrics import classification_metrics, regression_metrics

STAGES = ("val", "test")
INTERVALS = ("epoch", "step")
CLIP_ALGORITHMS = ("norm", "value")


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
        gradient_clip_val: clip gradients at this value (``None`` or 0: no clipping).
        gradient_clip_algorithm: ``norm`` (the total 2-norm, default) or ``value``.
        accumulate_grad_batches: batches whose gradients are averaged into one optimizer step.
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
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
        accumulate_grad_batches: int = 1,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # see training_step
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = check_choice("optim.scheduler_interval", scheduler_interval, INTERVALS)
        check_range("trainer.gradient_clip_val", gradient_clip_val or 0.0, 0.0)
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = check_choice(
            "trainer.gradient_clip_algorithm", gradient_clip_algorithm or "norm", CLIP_ALGORITHMS
        )
        self.accumulate_grad_batches = int(
            check_range("trainer.accumulate_grad_batches", accumulate_grad_batches, 1)
        )
        self._batches_in_epoch = 0
        # whether this epoch's training consumed all its batches (not cut short by trainer.max_steps); True
        # before any training, for a run resumed from a checkpoint saved before the epoch's end hooks
        self._epoch_completed = True
        self.task = Task(task)
        self.classification = self.task is Task.CLASSIFICATION
        self.train_loss = MeanMetric()
        self._train_loss_sum = 0.0  # the epoch's sum of batch loss × batch size, on the host
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

    # --- training: manual optimization, one optimizer step per batch of a StepGroups group -------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        """Runs one optimizer step per batch: ``batch`` is one batch ``(x, y[, ddp_scale])`` or a list of
        them (:class:`~lossbench.data.loader.StepGroups`, ``data.steps_per_execution``).

        Lightning's automatic optimization loop would cost more per step than the step itself on a small
        CPU model; here every step still goes through ``manual_backward`` and the Lightning optimizer, so
        precision plugins (loss scaling), DDP and the ``on_before_backward`` / ``on_after_backward`` /
        ``on_before_optimizer_step`` hooks work as usual. Gradient clipping and accumulation come from
        ``trainer.gradient_clip_val`` / ``trainer.gradient_clip_algorithm`` /
        ``trainer.accumulate_grad_batches`` (``train.py`` hands them to this module).
        """
        group = batch if is_step_group(batch) else [batch]
        optimizer, accumulate = self.optimizers(), self.accumulate_grad_batches
        max_steps = self.trainer.max_steps
        # per-step state in locals, written back once per group (module attribute writes are slow)
        loss_sum, weight, seen = self._train_loss_sum, self._train_loss_weight, self._batches_in_epoch
        last = seen + len(group) if self.trainer.is_last_batch else -1  # the epoch's last batch, 1-based
        for x, y, *ddp_scale in group:
            if max_steps >= 0 and self.global_step >= max_steps:
                break  # max_steps counts optimizer steps: stop inside a group
            loss = self.loss(self.model(x), y)
            value = loss.item()  # the step's one device sync: the NaN check before the optimizer step
            if not math.isfinite(value):  # so a NaN never reaches the weights
                self._raise_non_finite(value)
            # DDP: the scale makes the averaged gradient that of the global batch (see TensorBatchLoader);
            # it is 0 for a rank's placeholder sample, which then does not count in the training loss
            scale = ddp_scale[0] if ddp_scale else 1.0
            if scale:  # the epoch's training loss, from the value the check synced anyway
                loss_sum += value * len(y)
                weight += len(y)
            scale /= accumulate  # the mean over the accumulated batches, as in Lightning's automatic loop
            self.manual_backward(loss * scale if scale != 1.0 else loss)
            seen += 1
            if seen % accumulate == 0 or seen == last:
                optimizer.step()  # clips in on_before_optimizer_step, after a precision plugin's unscaling
                optimizer.zero_grad(set_to_none=True)
                if self.scheduler_interval == "step" and self.scheduler_factory is not None:
                    self.lr_schedulers().step()  # type: ignore[union-attr]
        self._train_loss_sum, self._train_loss_weight, self._batches_in_epoch = loss_sum, weight, seen
        self._epoch_completed = seen == last
        # Loggers get Lightning's step counter, which counts Lightning batches (groups here): keep it at the
        # optimizer steps, as under automatic optimization, so train and val metrics share one step axis
        # (Lightning adds the current batch's 1 after this hook).
        self.trainer.fit_loop.epoch_loop._batches_that_stepped = self.global_step - 1

    def _raise_non_finite(self, value: float) -> None:
        raise NonFiniteLossError(
            f"{type(self.loss).__name__} returned {value} at step {self.global_step} "
            f"(epoch {self.current_epoch}): lower the learning rate (optim.optimizer.lr), check the "
            "data for NaN/Inf, or clip gradients (trainer.gradient_clip_val=1.0); the last good "
            "checkpoint is checkpoints/last.ckpt"
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, self.gradient_clip_val, self.gradient_clip_algorithm)

    def on_train_epoch_start(self) -> None:
        self._train_loss_sum, self._train_loss_weight = 0.0, 0
        self._batches_in_epoch, self._epoch_completed = 0, False
        self.loss.on_train_epoch_start(self.current_epoch, self.trainer.max_epochs)

    def on_train_epoch_end(self) -> None:
        # as Lightning: an epoch cut short by trainer.max_steps does not step an epoch schedule
        if (
            self.scheduler_interval == "epoch"
            and self.scheduler_factory is not None
            and self._epoch_completed
        ):
            self.lr_schedulers().step()  # type: ignore[union-attr]

    def on_validation_model_zero_grad(self) -> None:
        """Lightning zeroes the gradients before a validation inside an epoch; it does not know that this
        module may be accumulating them (trainer.accumulate_grad_batches), so zero only between steps."""
        if self._batches_in_epoch % self.accumulate_grad_batches == 0:
            super().on_validation_model_zero_grad()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The epoch's training loss is written to the loggers at its last step, before validation and the
        # checkpoint: were it logged as an epoch value, Lightning would write it after the checkpoint, and
        # a crash in between would leave a resumed run's CSV without that epoch's row.
        if not self.trainer.is_last_batch:
            return
        if self._train_loss_weight:
            weight = self._train_loss_weight
            self.train_loss.update(self._train_loss_sum / weight, weight=weight)
        self._train_loss_sum, self._train_loss_weight = 0.0, 0
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
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ConfigError(
                "optim.scheduler=ReduceLROnPlateau needs a monitored metric, which lossbench's schedules do "
                "not take: use a schedule stepped by epoch or step (e.g. optim=sgd's CosineAnnealingLR)"
            )
        # stepped by training_step / on_train_epoch_end (manual optimization), checkpointed by Lightning
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
