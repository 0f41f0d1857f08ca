"""The launchers' structured configs, registered as ``hydra/launcher=lossbench_packed`` and
``hydra/launcher=lossbench_sequential``.

lossbench's own ``conf/hydra/launcher/packed.yaml`` and ``sequential.yaml`` extend them, so the command
line names them ``hydra/launcher=packed`` and ``hydra/launcher=sequential`` (the default of ``train.py``).
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


@dataclass
class SequentialLauncherConf:
    """``hydra.launcher`` of the default launcher: jobs one after another, each composed once."""

    _target_: str = "hydra_plugins.lossbench_packed_launcher.sequential_launcher.SequentialLauncher"


ConfigStore.instance().store(
    group="hydra/launcher", name="lossbench_sequential", node=SequentialLauncherConf, provider="lossbench"
)
