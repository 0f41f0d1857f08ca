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
            raise ConfigError("lossbench tune --loss: name at least one loss, e.g. --loss ce,focal")
        if min(self.trials, self.seeds, self.workers, self.pack) < 1:
            raise ConfigError("lossbench tune: --trials, --seeds, --workers and --pack must be >= 1")
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


#: the data config keys that name files or folders (a table, an image folder, its test folder)
DATA_FILES = ("path", "root", "test_root")


def data_fingerprint(overrides: list[str]) -> str | None:
    """A digest of the files the data config of ``overrides`` names (:data:`DATA_FILES`): a file's
    content, a folder's file names, sizes and modification times; None when it names none (a built-in
    data set). A rerun in the same ``--out`` compares it: trials and final runs of other data are not
    this search's."""
    from lossbench.config import compose_run

    cfg = compose_run(overrides)
    digest = hashlib.sha256()
    named = False
    for key in DATA_FILES:
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
                    st = p.stat()
                    digest.update(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest() if named else None
