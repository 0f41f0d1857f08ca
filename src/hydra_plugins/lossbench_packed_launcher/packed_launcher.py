"""The Hydra ``Launcher`` of ``hydra/launcher=packed``; the work is :mod:`lossbench.packed.launcher`'s."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.lossbench_packed_launcher.config_cache import ReusingConfigLoader


class PackedLauncher(Launcher):
    """Trains the jobs of a sweep that can share one packed model together, up to ``max_pack`` per model,
    and every other job one after another as Hydra's basic launcher does.

    Args:
        max_pack: the most jobs one packed model holds; None: as many as the free memory holds.
    """

    def __init__(self, max_pack: int | None = None) -> None:
        super().__init__()
        self.max_pack = None if max_pack is None else int(max_pack)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep the sweep's context; its config loader becomes a :class:`ReusingConfigLoader`, so each job
        the sweeper composes to check it is not composed again to launch it."""
        if not isinstance(hydra_context.config_loader, ReusingConfigLoader):
            hydra_context.config_loader = ReusingConfigLoader(hydra_context.config_loader)
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run the jobs ``job_overrides`` (numbered from ``initial_job_idx``); their returns, in order."""
        from lossbench.packed.launcher import launch_packed  # torch and Lightning load here

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        return launch_packed(
            self.hydra_context,
            self.task_function,
            self.config,
            job_overrides,
            initial_job_idx,
            max_pack=self.max_pack,
        )
