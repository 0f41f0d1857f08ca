"""A CSV logger that appends to an existing ``metrics.csv`` and writes each row as soon as it is logged.

Lightning's :class:`~lightning.pytorch.loggers.CSVLogger` warns about a non-empty log dir and deletes its
``metrics.csv`` when it starts, so a resumed run would lose every earlier epoch; changing that means
overriding private parts of its writer. :class:`AppendingCSVLogger` is instead a small logger of its own
on Lightning's public :class:`~lightning.pytorch.loggers.Logger` interface, writing the same files:
``<save_dir>/<name>/<version>/metrics.csv`` (a ``step`` column and one column per metric, sorted, the
header rewritten when a new metric appears) and ``hparams.yaml`` next to it. The resume code drops the
rows of the epochs trained again before the logger starts
(:func:`lossbench.resume_files.drop_csv_rows_after_epoch`).

One difference from Lightning's class: ``Trainer.log_dir`` special-cases Lightning's own CSV and
TensorBoard loggers; with this one first in the list it is the ``save_dir`` (the run dir), as for W&B.
"""

from __future__ import annotations

import csv
import os
from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from lossbench.atomic_files import write_csv_atomically


class CSVMetricsWriter:
    """Rows of metrics appended to ``<log_dir>/metrics.csv``; hyperparameters in ``<log_dir>/hparams.yaml``.

    An existing ``metrics.csv`` is kept: its header gives the initial columns and new rows go after its
    rows. When a row brings a metric not yet in the header, the file is rewritten with the wider header.
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self.fs = get_filesystem(log_dir)
        self.metrics: list[dict[str, Any]] = []  # logged, not yet written
        self.metrics_keys: list[str] = self._read_header()  # the columns written last (save reads them again)
        self.hparams: dict[str, Any] = {}
        self.fs.makedirs(log_dir, exist_ok=True)

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        """Record one row (written by :meth:`save`); tensors become Python numbers."""
        row = {k: v.item() if isinstance(v, Tensor) else v for k, v in metrics.items()}
        row["step"] = step
        self.metrics.append(row)

    def log_hparams(self, params: dict[str, Any]) -> None:
        """Add ``params`` to the hyperparameters and write them all to ``hparams.yaml``."""
        self.hparams.update(params)
        save_hparams_to_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)

    def save(self) -> None:
        """Append the recorded rows to ``metrics.csv``, first widening its header if new keys appeared.

        The columns are those of the file's own header, read again at each save: another writer of the
        same file (a process ``ddp_spawn`` started for fitting, while this one only tests) may have
        widened it since this one last wrote."""
        if not self.metrics:
            return
        header = self._read_header()
        keys = set().union(*self.metrics)
        if not header or not keys <= set(header):
            rows = self._read_rows()[1]
            self.metrics_keys = sorted({*header, *keys})
            self._write_header_and(rows)
        else:
            self.metrics_keys = header
        with self.fs.open(self.metrics_file_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.metrics_keys).writerows(self.metrics)
        self.metrics = []

    def _read_header(self) -> list[str]:
        """The columns of ``metrics.csv`` (its first line); empty when there is no such file."""
        if not self.fs.isfile(self.metrics_file_path):
            return []
        with self.fs.open(self.metrics_file_path, "r", newline="") as f:
            return next(csv.reader(f), [])

    def _read_rows(self) -> tuple[list[str], list[dict[str, str]]]:
        """The header and rows of ``metrics.csv``; empty when there is no such file."""
        if not self.fs.isfile(self.metrics_file_path):
            return [], []
        with self.fs.open(self.metrics_file_path, "r", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows

    def _write_header_and(self, rows: list[dict[str, str]]) -> None:
        """Rewrite ``metrics.csv`` as the current header followed by ``rows``: locally, whole or not at all
        (a kill while the test row widens the header left an empty file of a finished run's curves)."""
        if "://" not in self.metrics_file_path:
            write_csv_atomically(Path(self.metrics_file_path), self.metrics_keys, rows)
            return
        with self.fs.open(self.metrics_file_path, "w", newline="") as f:  # remote: fsspec's own write
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class AppendingCSVLogger(Logger):
    """Log metrics to ``<save_dir>/<name>/<version>/metrics.csv``, appending to an existing file.

    Args:
        save_dir: the directory under which ``name/version`` is created.
        name: the experiment's subdirectory (``""`` or ``None``: none).
        version: the version's subdirectory: a string as is, an int as ``version_<n>``, ``None`` for the
            next free ``version_<n>`` (as Lightning's CSVLogger).
        prefix: put with ``-`` before every metric key.
        flush_logs_every_n_steps: write the recorded rows every that many steps (1: each row at once).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        save_dir: str | os.PathLike,
        name: str | None = "csv",
        version: int | str | None = "",
        prefix: str = "",
        flush_logs_every_n_steps: int = 1,
    ) -> None:
        super().__init__()
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_every = flush_logs_every_n_steps
        self._writer: CSVMetricsWriter | None = None

    @property
    def name(self) -> str:
        """The experiment's name (its subdirectory of ``save_dir``)."""
        return self._name

    @property
    def version(self) -> int | str:
        """The version given, or the next free ``version_<n>`` number when none was."""
        if self._version is None:
            self._version = self._next_version()
        return self._version

    @property
    def save_dir(self) -> str:
        """The directory under which ``name/version`` is created."""
        return self._save_dir

    @property
    def root_dir(self) -> str:
        """The directory holding every version of the experiment: ``save_dir/name``."""
        return os.path.join(self.save_dir, self.name)

    @property
    def log_dir(self) -> str:
        """This version's directory, holding ``metrics.csv`` and ``hparams.yaml``."""
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return os.path.join(self.root_dir, version)

    @property
    @rank_zero_experiment
    def experiment(self) -> CSVMetricsWriter:
        """The writer of this run's files, created (with its directory) on first use."""
        if self._writer is None:
            self._writer = CSVMetricsWriter(self.log_dir)
        return self._writer

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | None = None) -> None:
        """Write the hyperparameters to ``hparams.yaml``."""
        params = vars(params) if isinstance(params, Namespace) else dict(params or {})
        self.experiment.log_hparams(params)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Tensor | float], step: int | None = None) -> None:
        """Record a row of metrics (keys prefixed) and write it out every ``flush_logs_every_n_steps``."""
        if self._prefix:
            metrics = {f"{self._prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        if step is None:
            step = len(self.experiment.metrics)
        self.experiment.log_metrics(metrics, step)
        if (step + 1) % self._flush_every == 0:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        """Write the recorded rows."""
        super().save()
        self.experiment.save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Write the recorded rows; nothing when no writer was created (e.g. a DDP launcher process)."""
        if self._writer is not None:
            self.save()

    def _next_version(self) -> int:
        """One more than the largest ``version_<n>`` directory under ``root_dir``, or 0."""
        fs = get_filesystem(self.root_dir)
        if not fs.isdir(self.root_dir):
            return 0
        dirs = [entry["name"] for entry in fs.ls(self.root_dir, detail=True) if entry["type"] == "directory"]
        names = [os.path.basename(str(d).rstrip("/")) for d in dirs]
        numbers = [int(n[8:]) for n in names if n.startswith("version_") and n[8:].isdigit()]
        return max(numbers, default=-1) + 1
