"""The packed launcher's structured config, registered as ``hydra/launcher=lossbench_packed``.

lossbench's own ``conf/hydra/launcher/packed.yaml`` extends it, so the command line names it
``hydra/launcher=packed``.
"""

from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class PackedLauncherConf:
    """``hydra.launcher``: the launcher class and the most runs one packed model holds."""

    _target_: str = "hydra_plugins.lossbench_packed_launcher.packed_launcher.PackedLauncher"
    #: the most jobs trained together as one packed model, a larger group split; None: as many as half the
    #: free memory of the training device holds (measured per kind of group), at most 64
    max_pack: Optional[int] = None  # noqa: UP045  Hydra's structured configs read typing.Optional


ConfigStore.instance().store(
    group="hydra/launcher", name="lossbench_packed", node=PackedLauncherConf, provider="lossbench"
)
