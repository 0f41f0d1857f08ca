"""The LightningModule that trains any model with any lossbench loss."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lossbench.calibration import Recalibration
from lossbench.checkpointing import restore_rng_states, rng_states
from lossbench.epoch_end import epoch_ends_with_this_batch, log_epoch_train_loss
from lossbench.errors import check_choice, check_range
from lossbench.losses.base import BenchLoss
from lossbench.metrics import DistributionMetrics
from lossbench.models.compiled import compiled_steps
from lossbench.nonfinite import (
    NonFiniteGuard,
    default_every_n_steps,
    non_finite_message,
    with_last_checkpoint,
)
from lossbench.predictions import gathered, save_predictions
from lossbench.resume import VAL_KEY
from lossbench.schedulers import PLATEAU_DUE_KEY, catch_up_plateau, lr_scheduler_config
from lossbench.task import Task, spec

STAGES = ("val", "test")
INTERVALS = ("epoch", "step")


class LossBenchModule(L.LightningModule):
    """Trains ``model`` with ``loss`` and logs the loss and task metrics per epoch.

    Metrics are computed from the loss's :meth:`~BenchLoss.probabilities` and
    :meth:`~BenchLoss.predictions` (multi-label: ``label_probabilities`` and ``label_predictions``;
    regression: :meth:`~BenchLoss.point_predictions`, and :meth:`~BenchLoss.predictive` for a
    distributional loss), never from the loss value, so every loss is judged alike. All
    metrics are torchmetrics objects updated each step and computed once per epoch (synchronised
    across DDP ranks by torchmetrics), so a step does no Python logging. Training uses Lightning's
    automatic optimization: one Lightning batch is one batch, and gradient clipping, accumulation,
    precision plugins and the learning-rate schedule are the Trainer's own (``trainer.gradient_clip_val``,
    ``trainer.accumulate_grad_batches``, ``trainer.precision``). Every training loss goes through a
    :class:`~lossbench.nonfinite.NonFiniteGuard`, which stops the run at a NaN/Inf loss without a
    per-step device sync on a GPU.

    Args:
        model: maps a batch of inputs to raw outputs.
        loss: the loss to train with.
        optimizer: partial taking the parameters (from Hydra ``_partial_: true``).
        scheduler: optional partial taking the optimizer.
        scheduler_interval: ``epoch`` or ``step``.
        task: the data set's task.
        num_classes: classes (classification) or labels (multi-label).
        monitor: the validation metric a ``ReduceLROnPlateau`` schedule follows.
        nonfinite_every_n_steps: steps between host reads of the NaN/Inf guard; ``None``: 1 on one CPU
            process (checked before the backward pass), else
            :data:`~lossbench.nonfinite.DEFAULT_EVERY_N_STEPS`.
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
        monitor: str | None = None,
        nonfinite_every_n_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.model, self.loss = model, loss
        #: with ``model.compile=true``: the static-shape compiled steps (:mod:`lossbench.models.compiled`)
        self.compiled_steps = compiled_steps(model, loss)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = check_choice("optim.scheduler_interval", scheduler_interval, INTERVALS)
        self.monitor = monitor
        if nonfinite_every_n_steps is not None:
            check_range("nonfinite_check.every_n_steps", nonfinite_every_n_steps, 1)
        self.nonfinite_every_n_steps = nonfinite_every_n_steps
        self.guard: NonFiniteGuard | None = None  # built at fit start, when the device is known
        #: where the test epoch's predictions are written (:mod:`lossbench.predictions`); None: not kept
        self.predictions_path: Path | None = None
        self.test_batches: list[tuple[Tensor, Tensor]] = []
        #: a validation pass that fits the recalibration (:mod:`lossbench.calibration`) and logs nothing
        self.calibrating = False
        self.calibration_batches: list[tuple[Tensor, Tensor]] = []
        #: a resumed checkpoint's validation metrics when an epoch-end plateau step followed it
        self.plateau_due: dict[str, float] | None = None
        self.task = Task(task)
        self.classification = self.task is Task.CLASSIFICATION
        self.distributional = type(loss).predictive is not BenchLoss.predictive
        self.train_loss = MeanMetric()
        self._train_loss_sum = torch.zeros(())  # the epoch's sum of batch loss × batch size, on the device
        self._train_loss_weight = 0
        self.stage_loss = nn.ModuleDict({s: MeanMetric() for s in STAGES})
        collections = spec(self.task).metric_collections(num_classes)
        if self.task is Task.REGRESSION:
            (reg,) = collections
            self.value_metrics = nn.ModuleDict({s: reg.clone(prefix=f"{s}/") for s in STAGES})
            if self.distributional:
                self.distribution_metrics = nn.ModuleDict({s: DistributionMetrics() for s in STAGES})
        else:
            assert num_classes is not None, f"{self.task.value} needs num_classes"
            labels, probs = collections
            self.label_metrics = nn.ModuleDict({s: labels.clone(prefix=f"{s}/") for s in STAGES})
            self.prob_metrics = nn.ModuleDict({s: probs.clone(prefix=f"{s}/") for s in STAGES})
        self.recalibration = Recalibration(self.task, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def metric_directions(self, stage: str = "val") -> dict[str, bool | None]:
        """Each metric this module logs for ``stage`` -> whether higher is better, as the torchmetrics
        object computing it declares (``higher_is_better``; ``None``: no better direction)."""
        directions: dict[str, bool | None] = {f"{stage}/loss": False}
        for collection in self._collections(stage):
            for name, metric in collection.items(keep_base=False):
                directions[name] = metric.higher_is_better
        if self.distributional:  # the scores this loss's distribution gives, from one probe sample
            probe = DistributionMetrics()
            outputs = torch.zeros(1, self.loss.num_outputs(Task.REGRESSION, None, 1))
            probe.update(self.loss.predictive(outputs), torch.zeros(1, 1))
            directions.update({f"{stage}/{n}": DistributionMetrics.direction(n) for n in probe.compute()})
        return directions

    def _collections(self, stage: str) -> tuple[Any, ...]:
        if self.task is Task.REGRESSION:
            return (self.value_metrics[stage],)
        return (self.label_metrics[stage], self.prob_metrics[stage])

    # --- training: Lightning's automatic optimization ------------------------------------------------
    def on_fit_start(self) -> None:
        world = self.trainer.world_size
        every = self.nonfinite_every_n_steps or default_every_n_steps(self.device, world)
        any_rank = None
        if world > 1:
            strategy = self.trainer.strategy

            def any_rank(found: bool) -> bool:
                return bool(strategy.reduce_boolean_decision(found, all=False))

        self.guard = NonFiniteGuard(every, self._non_finite_message, any_rank)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The loss of one batch ``(x, y[, ddp_scale])``; Lightning runs backward and the optimizer step.

        Under DDP the tensor loader adds ``ddp_scale``, which makes the averaged gradient that of the
        global batch (see :class:`~lossbench.data.loader.TensorBatchLoader`); it is 0 for a rank's
        placeholder sample, which then does not count in the training loss.
        """
        x, y, *ddp_scale = batch
        steps = self.compiled_steps
        loss = steps.train_loss(x, y) if steps is not None else self.loss(self.model(x), y)
        assert self.guard is not None, "on_fit_start builds the guard"
        self.guard.observe(loss, self.global_step)
        scale = ddp_scale[0] if ddp_scale else 1.0
        if scale:
            self._train_loss_sum.add_(loss.detach(), alpha=len(y))
            self._train_loss_weight += len(y)
        return loss * scale if scale != 1.0 else loss

    def _non_finite_message(self, value: float, step: int) -> str:
        folders = [Path(c.dirpath) for c in self.trainer.checkpoint_callbacks if c.dirpath]
        last = next((f / "last.ckpt" for f in folders if (f / "last.ckpt").is_file()), None)
        message = non_finite_message(type(self.loss).__name__, value, step, self.current_epoch)
        return with_last_checkpoint(message, last)

    def on_train_epoch_start(self) -> None:
        self._train_loss_sum, self._train_loss_weight = torch.zeros((), device=self.device), 0
        self._train_loss_logged = False
        self.loss.on_train_epoch_start(self.current_epoch, self.trainer.max_epochs)

    def on_validation_start(self) -> None:
        if self.guard is not None and self.trainer.state.fn == TrainerFn.FITTING:
            self.guard.read()  # no validation (and no checkpoint after it) of weights a NaN reached

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The epoch's training loss is written to the loggers at its last step (an epoch cut short by
        # max_steps or a stop included), before validation and the checkpoint: were it logged as an epoch
        # value, Lightning would write it after the checkpoint, and a crash in between would leave a
        # resumed run's CSV without that epoch's row.
        if epoch_ends_with_this_batch(self.trainer):
            self._end_epoch_train_loss()

    def on_train_epoch_end(self) -> None:
        if not self._train_loss_logged:  # a stop set after its last batch (by a mid-epoch validation's)
            self._end_epoch_train_loss()

    def _end_epoch_train_loss(self) -> None:
        assert self.guard is not None
        self.guard.read()
        if self._train_loss_weight:
            weight = self._train_loss_weight
            self.train_loss.update(self._train_loss_sum / weight, weight=weight)
        self._train_loss_weight = 0
        log_epoch_train_loss(self, self.train_loss.compute())  # synced across DDP ranks
        self.train_loss.reset()
        self._train_loss_logged = True

    # --- evaluation ---------------------------------------------------------------------------------
    def _eval_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        outputs = self.compiled_steps.outputs(x) if self.compiled_steps is not None else self.model(x)
        if stage == "val" and self.calibrating:
            self.calibration_batches.append((outputs.detach().float(), y.detach()))
            return
        if stage == "test" and self.predictions_path is not None:
            self.test_batches.append((outputs.detach().float(), y.detach()))
        if stage == "test":
            self.recalibration.update(self.loss, outputs.detach().float(), y)
        self.stage_loss[stage].update(self.loss(outputs, y).detach(), weight=len(y))
        if self.classification:
            self.label_metrics[stage].update(self.loss.predictions(outputs), y)
            self.prob_metrics[stage].update(self.loss.probabilities(outputs), y)
        elif self.task is Task.MULTILABEL:
            labels = y.long()
            self.label_metrics[stage].update(self.loss.label_predictions(outputs), labels)
            self.prob_metrics[stage].update(self.loss.label_probabilities(outputs), labels)
        else:
            point = self.loss.point_predictions(outputs).contiguous()  # [N, K, T] heads: a strided view
            y = y.reshape(point.shape)
            if point.shape[-1] == 1:
                self.value_metrics[stage].update(point.squeeze(-1), y.squeeze(-1))
            else:
                self.value_metrics[stage].update(point, y)
            if self.distributional:
                self.distribution_metrics[stage].update(self.loss.predictive(outputs), y)

    def _eval_epoch_end(self, stage: str) -> None:
        """Logs the stage's metric objects: Lightning computes them (synchronised across DDP ranks by
        torchmetrics) and resets them at the end of the epoch, as it does for any logged torchmetric."""
        self.log(f"{stage}/loss", self.stage_loss[stage])
        for collection in self._collections(stage):
            self.log_dict(collection)
        if self.distributional:  # a dict of scores: computed (synchronised) here, logged as tensors
            scores = self.distribution_metrics[stage]
            self.log_dict({f"{stage}/{k}": v for k, v in scores.compute().items()})
            scores.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        if self.calibrating:
            self._fit_recalibration()
        else:
            self._eval_epoch_end("val")

    def _fit_recalibration(self) -> None:
        """Fit the recalibration on the validation outputs (all processes') and log what was fitted as
        ``calibration/*`` callback metrics only, which :func:`lossbench.run.calibrate` reads back."""
        outputs, targets = gathered(self, self.calibration_batches)
        self.calibration_batches = []
        fitted = self.recalibration.fit(self.loss, outputs, targets)
        self.log_dict({f"calibration/{k}": v for k, v in fitted.items()}, logger=False)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_start(self) -> None:
        self.test_batches = []

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
        self.log_dict({f"test/{k}": v for k, v in self.recalibration.compute().items()})
        self.recalibration.reset()
        if self.predictions_path is not None and self.test_batches:
            save_predictions(self, self.test_batches, self.predictions_path)
        self.test_batches = []

    # --- exact resume: the random state (dropout, augmentation) continues where it stopped -----------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.guard is not None and self.trainer.state.fn == TrainerFn.FITTING:
            self.guard.read()  # never a checkpoint of weights a NaN reached
        checkpoint["rng_states"] = rng_states()
        metrics = self.trainer.callback_metrics
        checkpoint[VAL_KEY] = {k: float(v) for k, v in sorted(metrics.items()) if k.startswith("val/")}
        checkpoint[PLATEAU_DUE_KEY] = bool(self.trainer.is_last_batch)  # an epoch-end plateau step follows

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        restore_rng_states(checkpoint.get("rng_states"))
        self.plateau_due = checkpoint.get(VAL_KEY) if checkpoint.get(PLATEAU_DUE_KEY) else None

    def on_train_start(self) -> None:
        catch_up_plateau(self.trainer, self.plateau_due)  # after the resumed schedules' states
        self.plateau_due = None

    # --- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        steps = self.trainer.estimated_stepping_batches
        scheduler = lr_scheduler_config(
            self.scheduler_factory, optimizer, self.scheduler_interval, steps, self.monitor
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
