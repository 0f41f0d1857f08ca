"""A CSV logger that appends to an existing ``metrics.csv`` (Lightning's deletes it), so resuming keeps
every earlier epoch, and that writes each row as soon as it is logged."""

from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = sorted(csv.DictReader(f).fieldnames or [])


class AppendingCSVLogger(CSVLogger):
    """:class:`~lightning.pytorch.loggers.CSVLogger` that keeps earlier rows and flushes every row."""

    def __init__(self, save_dir: str, name: str = "csv", version: str = "", **kwargs) -> None:
        kwargs.setdefault("flush_logs_every_n_steps", 1)
        super().__init__(save_dir=save_dir, name=name, version=version, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> _AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
