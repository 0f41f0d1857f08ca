"""Shared fixtures: compose the real Hydra config, run training in-process or as a subprocess, write a fake
sweep for ``lossbench compare`` and a wine table for ``data=table``."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hydra.core.global_hydra import GlobalHydra
from hypothesis import settings
from omegaconf import DictConfig, open_dict

from lossbench.config import compose_run
from tests import preloaded
from tests.fake_runs import write_sweep
from tests.tables import wine_frame

ROOT = Path(__file__).resolve().parents[1]

# Each pytest-xdist worker, and each CLI run a test starts, would give torch one thread per core: with
# `make test`'s two workers on two cores that oversubscribes the CPU and OpenMP's spinning threads slow
# every process down (the slow tests ran 1.9x longer). Each worker gets its share of the cores instead,
# set before torch loads (none of the imports above loads it) and inherited by the CLI runs. The xdist
# controller loads this file first (as one process) and its workers inherit its environment, so a value
# this file chose is marked and chosen again in each worker; one the user set is kept everywhere.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_CHOSEN_HERE = "LOSSBENCH_TESTS_CHOSE_OMP_NUM_THREADS"
if "OMP_NUM_THREADS" not in os.environ or os.environ.get(_CHOSEN_HERE):
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ[_CHOSEN_HERE] = "1"

# property tests: 20 examples each in the whole suite; `make test-fast` sets HYPOTHESIS_PROFILE=fast (6)
settings.register_profile("full", max_examples=20)
settings.register_profile("fast", max_examples=6)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "full"))


@pytest.fixture(autouse=True)
def _ctrl_c_stays_ctrl_c() -> Iterator[None]:
    """Lightning ignores SIGINT in a process after it handled a Ctrl-C there (so a second one cannot cut its
    shutdown short); a test that drives that in-process would leave this worker ignoring SIGINT, and every
    CLI run it starts later would inherit that. Python's own handler is put back after each test."""
    yield
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """A command run in-process may set variables for the processes it starts (``OMP_WAIT_POLICY`` on a
    busy machine, W&B's service address); every test starts from the worker's own environment."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No W&B credentials and no W&B state outside the test's directories."""
    home = tmp_path_factory.mktemp("wandb_home")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    # an earlier in-process W&B run leaves its service's address here: a CLI run started by a test would
    # join that service, which still holds the run ids of processes a test killed
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.setenv("NETRC", str(home / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))


@pytest.fixture
def make_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose ``conf/train.yaml`` with overrides, as ``python train.py <overrides>`` would."""

    def _make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        cfg = compose_run(list(overrides), output_dir=output_dir or tmp_path)
        with open_dict(cfg):
            cfg.paths.root_dir = str(ROOT)
        return cfg

    yield _make
    GlobalHydra.instance().clear()


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """A fake sweep (nine finished jobs, a failed one, one without metrics), from ``write_sweep``."""
    return write_sweep(tmp_path)


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    """``tests.tables.wine_frame`` written to ``wine.csv``."""
    path = tmp_path / "wine.csv"
    wine_frame().to_csv(path, index=False)
    return path


def run_cli(
    *args: str,
    cwd: Path,
    timeout: float = 300,
    check: bool = True,
    env: dict[str, str] | None = None,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``python train.py ARGS`` in ``cwd`` with no stdin, as a user would (``env``: extra variables;
    started from :mod:`tests.preloaded`'s server, or with ``fresh`` in a new interpreter: a command that
    ends before torch loads, where the server's start would cost more than it saves)."""
    proc = (subprocess.run if fresh else preloaded.run)(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def start_command(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> preloaded.Process:
    """Start ``cmd`` in ``cwd`` with no stdin, as a user would, its output (stdout and stderr together)
    unbuffered in one text pipe (``env``: extra variables; started from :mod:`tests.preloaded`'s server
    where it can be)."""
    return preloaded.popen(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def advise_in_process(monkeypatch: pytest.MonkeyPatch, argv: list[str], max_seeds: int = 3) -> int:
    """``lossbench advise ARGV`` in this process: its budget counted from this call (a process counts it
    from its start), at most ``max_seeds`` replicates per loss (none bought with the time left)."""
    from lossbench.cli import main

    monkeypatch.setattr("lossbench.cli.COMMAND_STARTED", time.monotonic())
    for module in ("budget", "rounds"):
        monkeypatch.setattr(f"lossbench.advise.{module}.MAX_SEEDS", max_seeds)
    return main(argv)


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def script(name: str) -> ModuleType:
    """The module ``scripts/<name>.py``, imported from there."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first (in their collected order): under pytest-xdist the long runs start early and
    the short tests fill the workers' last minutes, instead of one long run finishing alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
