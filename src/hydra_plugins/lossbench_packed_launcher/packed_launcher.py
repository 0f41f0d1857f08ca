"""The Hydra ``Launcher`` of ``hydra/launcher=packed``; the work is :mod:`lossbench.packed.launcher`'s."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn

from hydra_plugins.lossbench_packed_launcher import sequential_launcher


# the module, not its class: a class imported by name is found in this module too by Hydra's plugin scan
class PackedLauncher(sequential_launcher.SequentialLauncher):
    """Trains the jobs of a sweep that can share one packed model together, up to ``max_pack`` per model,
    and every other job one after another as Hydra's basic launcher does; each job composed once, as the
    sequential launcher composes it (its :meth:`setup`).

    Args:
        max_pack: the most jobs one packed model holds; None: as many as the free memory holds.
    """

    def __init__(self, max_pack: int | None = None) -> None:
        super().__init__()
        self.max_pack = None if max_pack is None else int(max_pack)

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
