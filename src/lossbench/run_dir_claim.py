"""The run dir of a new run, claimed when Hydra resolves ``hydra.run.dir`` (the ``lossbench_run_dir``
resolver of ``conf/hydra/default.yaml``), and released again when the run never started.

With ``resume=true`` (or in a requeued Slurm job) the resolver gives the run dir of the run to continue
(:func:`lossbench.resume.find_resumable_run`); otherwise a new ``outputs/<date>/<time>`` dir, claimed by
creating it, so two runs started in the same second write into separate dirs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lossbench.resume import find_resumable_run, requeued
from lossbench.run_dir import RunDir


def run_dir_resolver(base: str, stamp: str, *, _root_: Any) -> str:
    """OmegaConf resolver for ``hydra.run.dir``: the run to resume when ``resume=true``, else a new dir."""
    if _root_.get("resume") or requeued():
        overrides = OmegaConf.to_container(_root_.hydra.overrides.task)
        found = find_resumable_run(Path(base), list(overrides))
        if found is not None:
            return str(found)
    return claim_run_dir(base, stamp)


#: (base, stamp) -> the dir this process claimed for it, so resolving ``hydra.run.dir`` twice agrees
_CLAIMED: dict[tuple[str, str], str] = {}


def claim_run_dir(base: str, stamp: str) -> str:
    """A new run dir ``base/stamp``, or ``base/stamp_1``, ``_2``, ... when another run took it first.

    Creating the directory is the claim (``mkdir`` is atomic), so two runs started in the same second get
    separate directories instead of writing into one.
    """
    key = (base, stamp)
    if key not in _CLAIMED:
        for n in range(1000):
            path = Path(base) / (stamp if n == 0 else f"{stamp}_{n}")
            try:
                path.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                continue
            _CLAIMED[key] = str(path)
            break
        else:
            raise FileExistsError(f"no free run dir for {base}/{stamp}: pass hydra.run.dir=<dir>")
    return _CLAIMED[key]


def release_run_dir(path: Path) -> bool:
    """Remove the run dir this process claimed (:func:`claim_run_dir`) when the run never started: it holds
    nothing but Hydra's ``.hydra/``, the log file and the W&B id. Returns whether it was removed.

    A run dir given on the command line, or one a resumed run continues, is never removed.
    """
    path = Path(path).resolve()
    if path not in {Path(p).resolve() for p in _CLAIMED.values()} or not path.is_dir():
        return False
    files = RunDir(path)
    kept = {files.hydra.name, files.wandb_id.name}
    if any(p.name not in kept and p.suffix != ".log" for p in path.iterdir()):
        return False
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):  # the <date> dir above it, when this run was its only one
        path.parent.rmdir()
    return True


def release_claimed() -> None:
    """:func:`release_run_dir` for every run dir this process claimed."""
    for path in list(_CLAIMED.values()):
        release_run_dir(Path(path))


@contextlib.contextmanager
def run_dir_lock(path: Path) -> Iterator[None]:
    """Hold the run dir ``path`` while its run starts and trains (``train.main`` takes it first thing): a
    second process continuing the same run (``resume=true`` twice at once) is refused in one line instead
    of both writing into it, and a stopping sweep sees which jobs are still at work. The lock is
    the operating system's ``flock`` on the directory itself (no file is added to the run dir); it ends
    with the process, also a killed one. Only rank 0 takes it (the caller's choice): DDP's other ranks
    run in the same dir. On a file system without ``flock`` the run goes on unlocked, with a warning."""
    import os

    from lossbench.output_root import lock_or_refuse

    fd = os.open(path, os.O_RDONLY)
    try:
        refusal = f"{path} is in use by another process continuing the same run: wait for it to end"
        lock_or_refuse(fd, lambda: refusal, path)
        yield
    finally:
        os.close(fd)


def run_dir_held(path: Path) -> bool:
    """Whether a process holds the run dir ``path`` now (:func:`run_dir_lock`; False where the file system
    has no ``flock``, or ``path`` cannot be opened)."""
    import fcntl
    import os

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing the descriptor releases a lock taken here
    return False
