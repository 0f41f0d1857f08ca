"""A Lightning callback that reports the monitored validation metric to an Optuna trial and prunes it.

optuna-integration's ``PyTorchLightningPruningCallback`` does the same for ``lightning.pytorch``; this one
exists because it must also work under DDP here without reading Lightning internals: rank 0 reports and
asks the pruner, and ``trainer.strategy.broadcast`` (public) shares the decision, so every process stops
together by raising :class:`optuna.TrialPruned` from the same epoch.
"""

from __future__ import annotations

import lightning as L
import optuna


class OptunaPruning(L.Callback):
    """Report ``monitor`` after each validation (not the sanity check); raise ``TrialPruned`` when told."""

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        prune = False
        if trainer.is_global_zero:
            self.trial.report(float(value), step=trainer.current_epoch)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune):
            raise optuna.TrialPruned(
                f"pruned at epoch {trainer.current_epoch} ({self.monitor}={float(value):.4f})"
            )
