"""No file under ``src/`` touches a private attribute, method or module of Lightning, Hydra (with OmegaConf),
W&B or Optuna (the check: :mod:`tests.unit.private_api`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.private_api import private_uses

ROOT = Path(__file__).resolve().parents[2]


# --- the checker on known cases ----------------------------------------------------------------------------
#: csv_logger.py as it was when it subclassed Lightning's CSVLogger through its private parts
OLD_CSV_LOGGER = """
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
"""


def test_the_old_csv_logger_is_caught():
    found = {message for _, message in private_uses(OLD_CSV_LOGGER)}
    assert found == {
        "_AppendingWriter overrides _check_log_dir_exists",
        "_AppendingWriter uses the library's self._fs",
        "AppendingCSVLogger uses the library's self._experiment",
        "AppendingCSVLogger uses the library's self._fs",
    }


@pytest.mark.parametrize(
    "source",
    [
        "from hydra._internal.utils import run_and_report",
        "import optuna._imports",
        "from optuna import _experimental",
        "from lightning.pytorch.loggers.logger import _DummyExperiment",
        "def f(trainer):\n    trainer._accelerator_connector = None",
        "def f(trainer):\n    return trainer.fit_loop.epoch_loop._batches_that_stepped",
        "class C:\n    def f(self):\n        return self.trainer.strategy._launcher",
        "from hydra.core.hydra_config import HydraConfig\nHydraConfig._instance = None",
        "from hydra.core.hydra_config import HydraConfig\nhc = HydraConfig.get()\nprint(hc._metadata)",
        "def f(study):\n    return study._storage",
        "def f(logger):\n    return getattr(logger, '_fs')",
        "import lightning as L\ndef f(t: L.Trainer | None):\n    return t._ckpt_path",
        "import wandb\nwandb.run._settings",
        "import lightning as L\nclass M(L.LightningModule):\n    def f(self):\n        return self._trainer",
        "import lightning as L\nclass P(L.Callback):\n    pass\nclass C(P):\n    def f(self):\n"
        "        return self._x",
    ],
)
def test_private_uses_are_caught(source):
    assert private_uses(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from lightning.pytorch.callbacks import Callback\nclass C(Callback):\n    def __init__(self):\n"
        "        self._seen = 0\n    def on_fit_start(self, trainer, pl_module):\n        self._seen += 1",
        "import lightning as L\nclass P(L.Callback):\n    def __init__(self):\n        self._x = 1\n"
        "class C(P):\n    def f(self):\n        return self._x",
        "import lightning as L\nclass C(L.Callback):\n    def _helper(self):\n        return self._helper",
        "class Mine:\n    def __init__(self):\n        self._cache = {}\n    def f(self):\n"
        "        return self._cache",
        "def f(cfg):\n    return cfg.model._target_",
        "from hydra.utils import instantiate\nm = instantiate(None)\nm._own",
        "def _helper():\n    pass\nthing = _helper()",
    ],
)
def test_own_private_names_and_public_underscores_are_not_flagged(source):
    assert private_uses(source) == []


# --- the checker on the source tree -----------------------------------------------------------------------
def test_no_source_file_uses_a_private_part_of_lightning_hydra_wandb_or_optuna():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {message}"
        for path in sorted((ROOT / "src").rglob("*.py"))
        for line, message in private_uses(path.read_text())
    ]
    assert not found, "\n".join(found)


def test_no_source_file_touches_the_fit_loop():
    """Epochs and steps are the Trainer's: nothing under ``src/`` reaches into ``trainer.fit_loop``."""
    assert not [p for p in (ROOT / "src").rglob("*.py") if "fit_loop" in p.read_text()]
