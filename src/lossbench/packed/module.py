"""The LightningModule that trains K packed replicas, each as its own run would train.

Every replica keeps what its unpacked run (:class:`lossbench.module.LossBenchModule`) has: its initial
weights and dropout stream (:mod:`lossbench.packed.replicas`), its batches
(:mod:`lossbench.packed.batches`), its loss, its optimizer and schedule (:mod:`lossbench.packed.optim`),
its gradient clipping (by the norm of its own gradients), its NaN/Inf guard, its metrics
(:mod:`lossbench.packed.metrics`) and its best epoch (:mod:`lossbench.packed.selection`). The replicas are
evaluated together as one packed model (:mod:`lossbench.packed.models`: an MLP, CNN or ResNet of
stacked weights; Packed-Ensembles, Laurent et al., ICLR 2023) and the sum of their losses is
backpropagated once: each replica's gradient is that of its own loss, since no parameter is shared.

Training uses Lightning's manual optimization: one ``training_step`` is one optimizer step of every
replica still training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from lossbench.epoch_end import epoch_ends_with_this_batch
from lossbench.nonfinite import default_every_n_steps, non_finite_message
from lossbench.packed.checkpoints import PackedCheckpoints, load_optimizer_states
from lossbench.packed.guard import ReplicaGuard
from lossbench.packed.metrics import ReplicaMetrics
from lossbench.packed.models import packed_model
from lossbench.packed.optim import (
    ReplicaOptimizers,
    Schedule,
    SharedOptimizer,
    build_optimizers,
    clip_gradients,
    default_dtype,
)
from lossbench.packed.replicas import Replica
from lossbench.packed.selection import BestWeights
from lossbench.schedulers import is_plateau
from lossbench.task import Task

OK, FAILED = "ok", "failed"


class PackedModule(L.LightningModule):
    """Trains the ``replicas`` of one packed group together (their outcomes: :mod:`.results`).

    A replica whose training loss is NaN or Inf stops, as its run's guard stops it
    (:mod:`lossbench.packed.guard`: on one CPU process before that step's backward pass; on a GPU at the
    next of the reads every ``nonfinite_check.every_n_steps`` steps, before any validation or checkpoint):
    it takes no further optimizer step, is neither validated nor tested again, and is reported ``failed``
    with its run's message; the other replicas go on. Each replica's metrics are kept per epoch in
    :attr:`history` (the group's Trainer logs nothing: each replica's run dir gets its own curves).

    Args:
        replicas: the group's replicas (:func:`~lossbench.packed.replicas.build_replicas`).
        task: the data set's task.
        num_classes: classes (classification) or labels (multi-label).
    """

    def __init__(self, replicas: Sequence[Replica], task: Task, num_classes: int | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.step_dtype = torch.get_default_dtype()  # its runs' optimizers step outside Lightning's context
        self.replicas = list(replicas)
        seeds = [r.seed for r in self.replicas]
        self.model = packed_model(
            [r.model for r in self.replicas], seeds, [r.rng_state for r in self.replicas]
        )
        self.losses = nn.ModuleList([r.loss for r in self.replicas])
        self.task = Task(task)
        self.metrics = ReplicaMetrics([r.loss for r in self.replicas], self.task, num_classes)
        self.best = [BestWeights(r.monitor, r.mode) for r in self.replicas]
        self.status = [OK] * len(self.replicas)
        self.errors: list[str | None] = [None] * len(self.replicas)
        self.last_val: list[dict[str, float]] = [{} for _ in self.replicas]
        self.epoch_completed = False  # the epoch being trained reached its last batch
        #: per replica, its schedule's steps in all and in this epoch (its checkpoint's loop progress)
        self.schedule_steps = [[0, 0] for _ in self.replicas]
        self.test_values: list[dict[str, float]] = [{} for _ in self.replicas]
        #: per replica, the last test epoch's ``(outputs, targets)`` batches (its ``predictions.npz``)
        self.test_batches: list[list[tuple[Tensor, Tensor]]] = [[] for _ in self.replicas]
        #: per replica, one dict per training epoch: ``epoch``, ``train/loss`` and the ``val/`` metrics
        self.history: list[list[dict[str, float]]] = [[] for _ in self.replicas]
        self.schedules: list[Schedule] = []
        self.epochs_trained = [0] * len(self.replicas)
        self.train_sums = torch.zeros(len(self.replicas))
        self.train_weight = 0
        self.guard: ReplicaGuard | None = None
        #: writes each replica's best and last checkpoints (None: none are written)
        self.checkpoints: PackedCheckpoints | None = None
        #: per replica, the run checkpoint it continues from (``checkpoints.resume_replicas``)
        self.resumed: list[dict[str, Any]] | None = None
        self.optimizer_built: ReplicaOptimizers | SharedOptimizer | None = None

    @property
    def num_replicas(self) -> int:
        return len(self.replicas)

    def alive(self) -> list[int]:
        """The replicas still training."""
        return [k for k, status in enumerate(self.status) if status == OK]

    def replica_modules(self, k: int) -> dict[str, nn.Module]:
        """Replica ``k``'s model and loss, as its run's module holds them (``model``, ``loss``)."""
        self.model.link()  # its tensors are views of the stacked ones, also after a move or cast
        return {"model": self.replicas[k].model, "loss": self.replicas[k].loss}

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        return self.model(x, shared=shared)

    # --- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self) -> ReplicaOptimizers | SharedOptimizer:
        optimizer, self.schedules = build_optimizers(
            self.replicas, self.model, int(self.trainer.estimated_stepping_batches)
        )
        self.optimizer_built = optimizer
        if self.resumed is not None:
            load_optimizer_states(self)
        return optimizer

    def replica_optimizers(self) -> ReplicaOptimizers | SharedOptimizer:
        """The replicas' optimizers (``self.optimizers()`` is Lightning's wrapper around them)."""
        return self.optimizer_built

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        outputs = self.model(x)
        losses = torch.stack(
            [self.losses[k](self.model.outputs(k, outputs), y[k]) for k in range(self.num_replicas)]
        )
        assert self.guard is not None, "on_fit_start builds the guard"
        self.stop_failed(self.guard.observe(losses, self.global_step))
        alive = self.alive()
        optimizers = self.replica_optimizers()
        optimizers.active = [status == OK for status in self.status]
        if not alive:
            self.trainer.should_stop = True
            return
        wrapped = self.optimizers()
        wrapped.zero_grad()
        for stacked in self.model.stacked_parameters():
            stacked.grad = None
        self.manual_backward(losses[alive].sum())
        for k in alive:
            clip_gradients(self.model, self.replicas[k], k)
        with default_dtype(self.step_dtype):
            wrapped.step()
        self.step_schedules("step")
        values = losses.detach()
        self.train_sums += torch.where(torch.isfinite(values), values, 0.0) * len(y[0])
        self.train_weight += len(y[0])

    def on_fit_start(self) -> None:
        """The replicas' NaN/Inf guard, read as often as the most often read of their runs' guards."""
        default = default_every_n_steps(self.device, 1)
        every = [OmegaConf.select(r.cfg, "nonfinite_check.every_n_steps") or default for r in self.replicas]
        self.guard = ReplicaGuard(min(every))

    def on_validation_start(self) -> None:
        if self.guard is not None:  # no validation of a replica a NaN reached
            self.stop_failed(self.guard.read())

    def stop_failed(self, found: list[tuple[int, float, int]]) -> None:
        """Stop each replica of ``found`` (the guard's ``(replica, loss, step)``) still training."""
        for k, value, step in found:
            if self.status[k] == OK:
                self.fail(k, value, step)

    def fail(self, k: int, value: float, step: int | None = None) -> None:
        """Stop replica ``k`` at a non-finite loss (of ``step``; default: this one), with its run's message;
        its buffers (batch norm's running statistics) stay as the last forward left them, as its stopped
        run's do."""
        self.status[k] = FAILED
        self.model.freeze(k)
        step = self.global_step if step is None else step
        loss_name = type(self.replicas[k].loss).__name__
        self.errors[k] = non_finite_message(loss_name, value, step, self.current_epoch)

    def on_train_epoch_start(self) -> None:
        self.train_sums, self.train_weight = torch.zeros(self.num_replicas, device=self.device), 0
        for counts in self.schedule_steps:
            counts[1] = 0
        for loss in self.losses:
            loss.on_train_epoch_start(self.current_epoch, self.trainer.max_epochs)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """At an epoch's last batch (one cut short by ``max_steps`` or a stop included) keep each
        replica's training loss and the step its run logs it at (and the epoch's validation metrics after
        it), as its run does then."""
        if not epoch_ends_with_this_batch(self.trainer):
            return
        assert self.guard is not None
        self.stop_failed(self.guard.read())  # no epoch end, validation or checkpoint of a NaN replica
        means = (self.train_sums / max(self.train_weight, 1)).tolist()
        for k in self.alive():
            entry = self.epoch_entry(k, self.current_epoch)
            entry["train/loss"] = means[k]
            entry["step"] = self.global_step - 1
        if self.trainer.is_last_batch:
            # Lightning steps a run's epoch schedules here, before validation and its checkpoints (a
            # plateau schedule waits for the epoch's end, after them)
            self.step_schedules("epoch", plateau=False)
            self.epoch_completed = True

    def on_train_epoch_end(self) -> None:
        """Count the epoch each replica trained; write their checkpoints; step the replicas' plateau
        schedules of an epoch trained to its end (after validation and the checkpoints, as Lightning)."""
        assert self.guard is not None
        self.stop_failed(self.guard.read())  # an epoch cut short by max_steps: no checkpoint of a NaN
        for k in self.alive():
            self.epochs_trained[k] = self.current_epoch + 1
        if self.checkpoints is not None:  # as its run's checkpoint callbacks
            self.checkpoints.epoch_end(self)
        if self.epoch_completed:
            self.step_schedules("epoch", plateau=True)
        self.epoch_completed = False

    def step_schedules(self, interval: str, plateau: bool | None = None) -> None:
        """Step the schedules of ``interval`` that set a training replica's rate (a plateau schedule on its
        replica's monitored value); ``plateau``: only the plateau ones (True) or only the others (False)."""
        for schedule in self.schedules:
            alive = [k for k in schedule.replicas if self.status[k] == OK]
            if schedule.interval != interval or not alive:
                continue
            if plateau is not None and is_plateau(schedule.scheduler) != plateau:
                continue
            for k in alive:  # as Lightning counts a run's schedule steps
                self.schedule_steps[k] = [n + 1 for n in self.schedule_steps[k]]
            if is_plateau(schedule.scheduler):
                schedule.scheduler.step(self.last_val[alive[0]][self.replicas[alive[0]].monitor])
            else:
                schedule.scheduler.step()

    def epoch_entry(self, k: int, epoch: int) -> dict[str, float]:
        """Replica ``k``'s :attr:`history` entry of ``epoch`` (made on first use)."""
        rows = self.history[k]
        if not rows or rows[-1]["epoch"] != epoch:
            rows.append({"epoch": epoch})
        return rows[-1]

    # --- evaluation ---------------------------------------------------------------------------------
    def eval_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        outputs = self.model(x, shared=True)
        for k in self.alive():
            own = self.model.outputs(k, outputs)
            self.metrics[k].update(stage, self.losses[k], own, y)
            if stage == "test":
                self.test_batches[k].append((own.detach().float(), y.detach()))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.eval_step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        for k in range(self.num_replicas):
            if self.status[k] != OK:
                self.metrics[k].reset("val")
                continue
            values = self.metrics[k].compute("val")
            if self.trainer.sanity_checking:
                continue
            self.last_val[k] = values
            self.epoch_entry(k, self.current_epoch).update(values)
            self.best[k].update(values, self.current_epoch, self.replica_modules(k))

    def on_test_epoch_start(self) -> None:
        self.test_batches = [[] for _ in self.replicas]

    def on_test_epoch_end(self) -> None:
        for k in self.alive():
            self.test_values[k] = self.metrics[k].compute("test")

    def restore_best(self) -> None:
        """Load each replica's best epoch (what its run tests: its best checkpoint; a run without one tests
        its last weights)."""
        for k in self.alive():
            if self.replicas[k].select_best:
                self.best[k].restore(self.replica_modules(k))

    def replica_state_dict(self, k: int) -> dict[str, Any]:
        """Replica ``k``'s state under the names its run's module gives it (``model.net.1.weight``, the
        loss's buffers under ``loss.``): the ``state_dict`` of its run's checkpoint."""
        modules = self.replica_modules(k)
        return {
            f"{name}.{key}": value for name, m in modules.items() for key, value in m.state_dict().items()
        }
