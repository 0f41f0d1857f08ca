"""The default launcher (``hydra/launcher=sequential``): Hydra's basic launcher, each job composed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig

from hydra_plugins.lossbench_packed_launcher.config_cache import ReusingConfigLoader
from hydra_plugins.lossbench_packed_launcher.sequential_launcher import SequentialLauncher
from lossbench.config import CONFIG_DIR


class CountingLoader:
    """A config loader that counts the jobs it composes."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.composed = inner, 0

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        self.composed += 1
        return self.inner.load_sweep_config(master_config, sweep_overrides)


class NoCallbacks:
    def on_job_start(self, **kwargs: Any) -> None: ...

    def on_job_end(self, **kwargs: Any) -> None: ...


def launch_checked(
    tmp_path: Path, batch: list[list[str]], first: int, callbacks: Any = None
) -> tuple[list, list, int]:
    """Launch ``batch`` (numbered from ``first``) with the default launcher after checking each job as
    Hydra's sweeper does; the jobs' returns, what each saw (job number, output dir), and how many
    configs were composed."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        config = loader.load_configuration(
            "train", [f"hydra.sweep.dir={tmp_path}", "logger=none"], run_mode=RunMode.MULTIRUN
        )
        assert config.hydra.launcher._target_.endswith("SequentialLauncher"), "the default launcher"
        counting = CountingLoader(loader)
        context = HydraContext(config_loader=counting, callbacks=callbacks or NoCallbacks())  # type: ignore[arg-type]
        seen = []

        def task(cfg: DictConfig) -> int:
            seen.append((HydraConfig.get().job.num, HydraConfig.get().runtime.output_dir))
            return int(cfg.seed)

        launcher = SequentialLauncher()
        launcher.setup(hydra_context=context, task_function=task, config=config)
        # by name: Hydra imports the plugin modules again when it scans them
        assert type(context.config_loader).__name__ == ReusingConfigLoader.__name__
        for overrides in batch:  # what Hydra's sweeper does to check the batch before launching it
            context.config_loader.load_sweep_config(config, overrides)
        returns = launcher.launch(batch, initial_job_idx=first)
    GlobalHydra.instance().clear()
    return list(returns), seen, counting.composed


def test_each_job_runs_with_the_config_the_sweeper_composed_to_check_it(tmp_path: Path) -> None:
    returns, seen, composed = launch_checked(tmp_path, [["seed=3"], ["seed=5"]], 4)
    assert composed == 2, "each job composed once"
    assert [r.return_value for r in returns] == [3, 5]
    assert seen == [(4, str(tmp_path / "4")), (5, str(tmp_path / "5"))]
    assert sorted(p.name for p in (tmp_path / "5" / ".hydra").iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]


def test_a_job_listed_twice_runs_twice_each_with_its_own_config(tmp_path: Path) -> None:
    """``seed=3,3``: the two jobs run in ``0/`` and ``1/`` with their own job numbers; the second did not
    get the config the first ran with (and made read-only)."""
    returns, seen, _ = launch_checked(tmp_path, [["seed=3"], ["seed=3"]], 0)
    assert [r.return_value for r in returns] == [3, 3]
    assert seen == [(0, str(tmp_path / "0")), (1, str(tmp_path / "1"))]


class StopAtJob(NoCallbacks):
    """Callbacks that stop the sweep as job ``num`` starts, outside its task (Hydra's ``run_job`` calls
    ``on_job_start`` before the task function): Ctrl-C, or SIGTERM to this process."""

    def __init__(self, num: int, signal_name: str) -> None:
        self.num, self.signal_name = num, signal_name

    def on_job_start(self, **kwargs: Any) -> None:
        import signal

        if HydraConfig.get().job.num != self.num:
            return
        if self.signal_name == "SIGINT":
            raise KeyboardInterrupt
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "SIGTERM would end the process"
        signal.raise_signal(signal.SIGTERM)


@pytest.mark.parametrize(("signal_name", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_between_jobs_ends_the_sweep_with_its_table_and_the_command_that_continues_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signal_name: str, status: int
) -> None:
    """Outside a job's task no handler was in place: SIGTERM ended the sweep silently (status -15, no
    table), Ctrl-C with Hydra's traceback."""
    with pytest.raises(SystemExit) as ended:
        launch_checked(tmp_path, [["seed=3"], ["seed=5"]], 0, StopAtJob(1, signal_name))
    assert ended.value.code == status
    said = capsys.readouterr()
    assert f"sweep {tmp_path}: 2 jobs" in said.out
    assert f"stopped by {signal_name}" in said.out + said.err and "resume=true" in said.out + said.err
    GlobalHydra.instance().clear()
