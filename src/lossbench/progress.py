"""Lightning's Rich progress bar, redrawn every ``every_n_batches`` batches instead of every batch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from lossbench.errors import check_range


class SparseRichProgressBar(RichProgressBar):
    """:class:`~lightning.pytorch.callbacks.RichProgressBar` that updates its bars and metrics every
    ``every_n_batches`` training and validation batches and at the last batch of each epoch.

    Lightning's bar updates the Rich task and re-reads every logged metric after each batch (its
    ``refresh_rate`` limits redraws per second, not that work), about 0.1 ms per batch on a 2-core CPU:
    a tenth of the step of a small model. The counts shown are exact at every update.

    Args:
        every_n_batches: batches between updates (1: Lightning's behaviour).
        kwargs: :class:`~lightning.pytorch.callbacks.RichProgressBar`'s arguments.
    """

    def __init__(self, every_n_batches: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.every_n_batches = int(
            check_range("callbacks.rich_progress_bar.every_n_batches", every_n_batches, 1)
        )

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """The bar's metrics: the epoch's train loss and the monitored validation metric, not ``v_num``."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        monitor = getattr(pl_module, "monitor", None)
        if monitor and monitor in trainer.callback_metrics:
            metrics[monitor] = float(trainer.callback_metrics[monitor])
        return metrics

    def _due(self, batch_idx: int, last: bool) -> bool:
        return last or (batch_idx + 1) % self.every_n_batches == 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._due(batch_idx, trainer.is_last_batch):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.is_disabled:  # e.g. on DDP ranks other than 0
            return
        batches = trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        total = batches[dataloader_idx] if isinstance(batches, list) else batches
        if self._due(batch_idx, batch_idx + 1 >= total):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
