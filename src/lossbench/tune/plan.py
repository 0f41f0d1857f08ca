"""What ``lossbench tune`` (and ``advise``) was asked to do: the losses, the budget per loss, where the
studies and runs go, and how runs train (:class:`Plan`), checked before anything loads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from lossbench.config import check_known_losses
from lossbench.errors import ConfigError
from lossbench.output_root import check_plain_name


@dataclass
class Plan:
    """What one ``lossbench tune`` command asks for."""

    losses: list[str]
    trials: int
    seeds: int
    out: Path
    overrides: list[str] = field(default_factory=list)
    storage: str | None = None
    prune: bool = False
    seed: int = 0
    workers: int = 1
    pack: int = 8

    def __post_init__(self) -> None:
        if not self.losses:
            raise ConfigError("--loss: name at least one loss, e.g. --loss ce,focal")
        if min(self.trials, self.seeds, self.workers, self.pack) < 1:
            raise ConfigError("--trials, --seeds, --workers and --pack must be >= 1")
        for loss in self.losses:  # each names folders (trials/<loss>/, final/<loss>/) inside --out
            check_plain_name(loss, "--loss")
        check_known_losses(self.losses)
        if starting := [o for o in self.overrides if o.lstrip("+~").startswith("ckpt_path=")]:
            raise ConfigError(
                f"{starting[0]} would start every trial and final run from one checkpoint; "
                "each trains from the start (rerun the same command to continue a stopped tune)"
            )
        self.out = Path(self.out).resolve()

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.out / 'study.db'}"


#: the data modules whose files are the user's, and the config keys that name them
OWN_DATA = {
    "lossbench.data.table.TableDataModule": ("path",),
    "lossbench.data.image_folder.ImageFolderDataModule": ("root", "test_root"),
}


def data_fingerprint(overrides: list[str]) -> str | None:
    """A digest of the user's data files the config of ``overrides`` names (:data:`OWN_DATA`): a table's
    content, an image folder's file names and sizes (a copy to scratch keeps them); None for a built-in
    data set. A rerun in the same ``--out`` compares it: trials and final runs of other data are not this
    search's."""
    from lossbench.config import compose_run

    cfg = compose_run(overrides)
    keys = OWN_DATA.get(str(OmegaConf.select(cfg, "data._target_", default=None)), ())
    digest = hashlib.sha256()
    named = False
    for key in keys:
        value = OmegaConf.select(cfg, f"data.{key}", default=None, throw_on_missing=False)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).expanduser()
        if path.is_file():
            named = True
            digest.update(f"{key}:file".encode())
            with path.open("rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(block)
        elif path.is_dir():
            named = True
            digest.update(f"{key}:folder".encode())
            for p in sorted(path.rglob("*")):
                if p.is_file():
                    digest.update(f"{p.relative_to(path)}:{p.stat().st_size}".encode())
    return digest.hexdigest() if named else None
