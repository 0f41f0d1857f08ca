"""What ``lossbench tune`` (and ``advise``) was asked to do: the losses, the budget per loss, where the
studies and runs go, and how runs train (:class:`Plan`), checked before anything loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
