"""The run dir: every file a run writes, named in one place, and the run's overrides read back from it.

A run dir (``outputs/<task_name>/<date>/<time>`` for one run, ``multirun/.../<job>`` for a sweep job) holds:

=========================  ==========================================================================
``metrics.json``           the run record (:mod:`lossbench.record`): status, metrics, config, error
``labels.json``            class index -> the data's own label, where the classes are named
``predictions.npz``        test-set outputs of the tested checkpoint (:mod:`lossbench.predictions`)
``checkpoints/``           ``last.ckpt`` (resume) and the best checkpoint(s) by the monitored metric
``csv/metrics.csv``        the curves, one row per logged step (the CSV logger)
``wandb_run_id``           the W&B run id, kept so that a resumed run continues the same W&B run
``tuned.json``             a ``lossbench tune`` final run's tuned parameters (its loss's best trial's)
``.hydra/``                Hydra's ``config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` (written by Hydra)
=========================  ==========================================================================

:class:`RunDir` is the only place these names are spelled; ``.hydra/overrides.yaml`` is read here only
(:meth:`RunDir.overrides`) and never written by lossbench: Hydra writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: the run record's file name
RECORD_NAME = "metrics.json"
#: the checkpoint a run continues from (``ModelCheckpoint(save_last=True)`` writes it)
LAST_CHECKPOINT_NAME = "last.ckpt"
#: ``checkpoints/last.ckpt``, relative to a run dir (as messages and globs name it)
LAST_CHECKPOINT = Path("checkpoints") / LAST_CHECKPOINT_NAME
#: the end-of-sweep table's file, in the sweep dir
SWEEP_SUMMARY_NAME = "sweep_summary.json"
#: the sweep's config, with the overrides it was started with, in the sweep dir (written by Hydra)
MULTIRUN_NAME = "multirun.yaml"


def saved_sweep(sweep_dir: Path) -> Any:
    """The ``hydra`` node of the ``multirun.yaml`` Hydra wrote in ``sweep_dir`` (its sweeper and the
    overrides the sweep was started with), as an OmegaConf node; None without that file."""
    saved = Path(sweep_dir) / MULTIRUN_NAME
    if not saved.is_file():
        return None
    from omegaconf import OmegaConf

    return OmegaConf.load(saved).hydra


@dataclass(frozen=True)
class RunDir:
    """The files of the run dir at ``path`` (nothing is created or read until asked)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def record(self) -> Path:
        return self.path / RECORD_NAME

    @property
    def labels(self) -> Path:
        return self.path / "labels.json"

    @property
    def tuned(self) -> Path:
        return self.path / "tuned.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.path / LAST_CHECKPOINT

    @property
    def csv(self) -> Path:
        return self.path / "csv" / "metrics.csv"

    @property
    def wandb_id(self) -> Path:
        return self.path / "wandb_run_id"

    @property
    def hydra(self) -> Path:
        return self.path / ".hydra"

    @property
    def overrides_file(self) -> Path:
        return self.hydra / "overrides.yaml"

    @classmethod
    def of_checkpoint(cls, checkpoint: Path) -> RunDir:
        """The run dir whose ``checkpoints/`` holds ``checkpoint``."""
        return cls(Path(checkpoint).resolve().parents[1])

    def has_overrides(self) -> bool:
        return self.overrides_file.is_file()

    def overrides(self) -> list[str]:
        """The run's command-line overrides as Hydra saved them (``[]`` when it saved none).

        Raises :class:`ValueError` naming the file when it is not a YAML list of strings.
        """
        if not self.overrides_file.is_file():
            return []
        try:
            saved = yaml.safe_load(self.overrides_file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.overrides_file} is not YAML ({type(err).__name__})") from None
        if saved is None:
            return []
        if not isinstance(saved, list):
            raise ValueError(f"{self.overrides_file} holds a {type(saved).__name__}, not a list of overrides")
        return [str(o) for o in saved]

    def hydra_node(self) -> dict[str, Any]:
        """The ``hydra`` node Hydra saved in ``.hydra/hydra.yaml`` ({} without one)."""
        saved = self.hydra / "hydra.yaml"
        if not saved.is_file():
            return {}
        return (yaml.safe_load(saved.read_text()) or {}).get("hydra") or {}

    def saved_config(self) -> dict[str, Any]:
        """The run's config as Hydra saved it in ``.hydra/config.yaml`` ({} without one); a file that is
        not YAML raises ``yaml.YAMLError``."""
        saved = self.hydra / "config.yaml"
        if not saved.is_file():
            return {}
        return yaml.safe_load(saved.read_text()) or {}

    def started_in(self) -> Path | None:
        """The directory the run was started in (Hydra's ``runtime.cwd``, from ``.hydra/hydra.yaml``)."""
        runtime = self.hydra_node().get("runtime") or {}
        return Path(runtime["cwd"]) if runtime.get("cwd") else None

    def choices(self) -> dict[str, str]:
        """The config group options the run was composed with (Hydra's ``runtime.choices``: ``data``,
        ``loss``, ``model``, ...), from ``.hydra/hydra.yaml``."""
        chosen = (self.hydra_node().get("runtime") or {}).get("choices") or {}
        return {str(k): str(v) for k, v in chosen.items()}

    def searchpath_overrides(self) -> list[str]:
        """The run's ``hydra.searchpath=...`` overrides (its config dirs), from ``.hydra/hydra.yaml``."""
        given = (self.hydra_node().get("overrides") or {}).get("hydra") or []
        return [str(o) for o in given if str(o).startswith("hydra.searchpath=")]
