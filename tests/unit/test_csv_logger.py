"""AppendingCSVLogger: Lightning's CSVLogger files and properties, but appending to an existing file."""

from __future__ import annotations

import csv
from argparse import Namespace
from pathlib import Path

import torch
import yaml

from lossbench.csv_logger import AppendingCSVLogger


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_rows_are_written_as_they_are_logged(tmp_path):
    logger = AppendingCSVLogger(tmp_path)
    logger.log_metrics({"train/loss": torch.tensor(0.5)}, step=0)
    fields, rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert fields == ["step", "train/loss"] and rows == [{"step": "0", "train/loss": "0.5"}]


def test_a_new_metric_widens_the_header_and_keeps_earlier_rows(tmp_path):
    logger = AppendingCSVLogger(tmp_path)
    logger.log_metrics({"train/loss": 0.5, "epoch": 0}, step=0)
    logger.log_metrics({"val/acc": 0.75, "epoch": 0}, step=1)
    fields, rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert fields == ["epoch", "step", "train/loss", "val/acc"]
    assert rows == [
        {"epoch": "0", "step": "0", "train/loss": "0.5", "val/acc": ""},
        {"epoch": "0", "step": "1", "train/loss": "", "val/acc": "0.75"},
    ]


def test_a_writer_whose_file_another_writer_widened_keeps_every_row_in_its_column(tmp_path):
    """``trainer.strategy=ddp_spawn``: the fit's rows are written by spawned processes, then the test's by
    a writer made before them, which knew no columns. It rewrote the file with the test's columns only
    and failed on the earlier rows (the run failed, its CSV cut to one line); a writer that knew fewer
    columns than the file would have appended rows under the wrong ones."""
    tester = AppendingCSVLogger(tmp_path)  # made first, as the parent process's logger is
    tester.log_metrics({"epoch": 0}, step=0)  # (it created the file with its own columns)
    fitter = AppendingCSVLogger(tmp_path)
    fitter.log_metrics({"train/loss": 0.5, "epoch": 1}, step=17)
    fitter.log_metrics({"val/acc": 0.75, "epoch": 1}, step=17)
    tester.log_metrics({"test/acc": 0.7, "epoch": 1}, step=34)
    tester.log_metrics({"val/acc": 0.8, "epoch": 1}, step=34)  # a column only the file knows
    fields, rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert fields == ["epoch", "step", "test/acc", "train/loss", "val/acc"]
    assert [(r["step"], r["train/loss"], r["val/acc"], r["test/acc"]) for r in rows] == [
        ("0", "", "", ""),
        ("17", "0.5", "", ""),
        ("17", "", "0.75", ""),
        ("34", "", "", "0.7"),
        ("34", "", "0.8", ""),
    ]


def test_an_existing_file_is_appended_to_not_deleted(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("epoch,step,val/acc\n0,10,0.5\n")
    logger = AppendingCSVLogger(tmp_path)
    logger.log_metrics({"val/acc": 0.6, "epoch": 1}, step=20)
    logger.log_metrics({"val/loss": 0.9, "epoch": 1}, step=20)
    logger.finalize("success")
    fields, rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert fields == ["epoch", "step", "val/acc", "val/loss"]
    assert [r["val/acc"] for r in rows] == ["0.5", "0.6", ""] and rows[2]["val/loss"] == "0.9"


def test_rows_wait_for_the_flush_interval_or_finalize(tmp_path):
    logger = AppendingCSVLogger(tmp_path, flush_logs_every_n_steps=10)
    logger.log_metrics({"a": 1.0}, step=0)
    assert not (tmp_path / "csv" / "metrics.csv").exists()
    logger.finalize("success")
    assert _rows(tmp_path / "csv" / "metrics.csv")[1] == [{"a": "1.0", "step": "0"}]


def test_finalize_without_a_logged_row_creates_nothing(tmp_path):
    AppendingCSVLogger(tmp_path).finalize("success")
    assert not (tmp_path / "csv").exists()


def test_dirs_names_and_versions_follow_lightnings_csv_logger(tmp_path):
    logger = AppendingCSVLogger(tmp_path, name="exp", version=None, prefix="fold1")
    assert (logger.name, logger.version, logger.save_dir) == ("exp", 0, str(tmp_path))
    assert logger.root_dir == str(tmp_path / "exp") and logger.log_dir == str(tmp_path / "exp" / "version_0")
    logger.log_metrics({"loss": 1.0})
    assert _rows(tmp_path / "exp" / "version_0" / "metrics.csv")[0] == ["fold1-loss", "step"]
    assert AppendingCSVLogger(tmp_path, name="exp", version=None).version == 1
    assert AppendingCSVLogger(tmp_path, name=None, version="v").log_dir == str(tmp_path / "v")


def test_hyperparameters_go_to_hparams_yaml(tmp_path):
    logger = AppendingCSVLogger(tmp_path)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_hyperparams(Namespace(batch_size=64))
    assert yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text()) == {"lr": 0.1, "batch_size": 64}
