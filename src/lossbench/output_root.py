"""Where a run may write: names that build paths stay plain, and the output dir is writable before any work.

``task_name`` names the folder ``outputs/<task_name>/`` (``multirun/<task_name>/`` for a sweep), so it must
be one plain folder name: ``task_name=../../elsewhere`` would write outside the output root without a word.
And an output dir that cannot be written (read-only, full, a file in the way) is named in one line before
anything is trained, instead of failing after minutes or with Hydra's traceback.

:class:`OutputRootCheck` (a Hydra callback, see ``conf/hydra/default.yaml``) does both for ``train.py``, at
the start of a run or a sweep; ``lossbench tune``/``advise``/``compare`` call :func:`check_writable` on
their ``--out``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lossbench.errors import EXIT_USAGE, ConfigError, cause_of
from lossbench.run_dir_claim import release_run_dir


def check_plain_name(value: Any, key: str, fix: str = "") -> str:
    """``value`` if it is one plain folder name (no separator, not ``.`` or ``..``); else a ConfigError
    (``fix``: what to do instead, appended to the message)."""
    name = str(value)
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(
            f"{key}={name!r} is not a plain folder name: it names a folder inside the output root and may "
            f"not leave it (no '/', '\\', '.' or '..'){fix}"
        )
    return name


#: what to do instead of a task_name with a path in it
TASK_NAME_FIX = (
    ": use a name such as task_name=my_experiment (to write elsewhere, set hydra.run.dir / hydra.sweep.dir)"
)


def existing_ancestor(path: Path) -> Path:
    """The deepest folder of ``path``'s ancestors (or ``path`` itself) that exists."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor)


def why_unwritable(err: OSError) -> str:
    reasons = {
        errno.EROFS: "it is on a read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.ENOTDIR: "a file stands where a folder is needed",
        errno.EEXIST: "a file stands where a folder is needed",
    }
    return reasons.get(err.errno or 0, err.strerror or str(err))


def check_writable(path: Path, what: str) -> None:
    """Raise a one-line ``ConfigError`` unless a file can be written where ``path`` is or will be created.

    The probe writes and removes a small file in the deepest existing folder of ``path``, so nothing of
    ``path`` is created here and nothing already there is touched.
    """
    folder = existing_ancestor(path)
    try:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(folder))
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"lossbench write probe\n" * 64)
            probe.flush()
    except OSError as err:
        raise ConfigError(
            f"{what} {path} cannot be written ({why_unwritable(err)} at {folder}): free space or fix its "
            f"permissions, or choose another folder"
        ) from None


def refuse(err: ConfigError) -> None:
    """Print the error as one line and exit with the usage status, before Hydra makes any folder."""
    print(f"lossbench: {type(err).__name__}: {err}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def writable_run_dir(config: DictConfig) -> Path:
    """``hydra.run.dir`` of ``config``, resolved (which claims, that is creates, a new run dir) and checked
    writable; a one-line ``ConfigError`` when it cannot be made or written (a claimed dir is released)."""
    try:
        run_dir = Path(str(config.hydra.run.dir))
    except Exception as err:
        cause = cause_of(err, OSError)
        if not isinstance(cause, OSError):
            raise
        raise ConfigError(
            f"the run dir cannot be created ({why_unwritable(cause)} at "
            f"{existing_ancestor(Path(cause.filename or '.'))}): free "
            "space or fix its permissions, or choose another folder (hydra.run.dir=<dir>)"
        ) from None
    try:
        check_writable(run_dir, "the run dir")
    except ConfigError:
        release_run_dir(run_dir)
        raise
    return run_dir


class OutputRootCheck(Callback):
    """Checks ``task_name`` and the run's (or sweep's) output dir before any work."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_plain_name(config.get("task_name"), "task_name", TASK_NAME_FIX)
            writable_run_dir(config)
        except ConfigError as err:
            refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_plain_name(config.get("task_name"), "task_name", TASK_NAME_FIX)
            check_writable(Path(str(config.hydra.sweep.dir)), "the sweep dir")
        except ConfigError as err:
            refuse(err)


#: the file a running ``tune`` or ``advise`` holds locked in its ``--out`` (:func:`command_lock`)
LOCK_NAME = ".command.lock"


def lock_or_refuse(handle: Any, refusal: Callable[[], str], what: object) -> None:
    """Lock ``handle`` (a file or descriptor) with ``flock``, exclusively and without waiting: a
    :class:`ConfigError` saying ``refusal()`` when another process holds it; a warning, and no lock, where
    the file system has none (ENOLCK, ENOSYS)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(refusal()) from None
    except OSError as err:
        logging.getLogger("lossbench").warning("%s cannot be locked (%s): it goes on unlocked", what, err)


@contextlib.contextmanager
def command_lock(out: Path, command: str) -> Iterator[None]:
    """Hold ``out`` for this command: a second command on the same ``--out`` is refused in one line (it
    would continue the first one's unfinished runs while they train). The lock is the operating system's
    (``flock``): it ends with the process, also a killed one, so a stopped command never blocks its rerun.
    A command that ends with an error while ``out`` holds nothing but its lock (it made the folder and was
    refused) removes both, still holding the lock; on a file system without ``flock`` it goes on unlocked,
    with a warning."""
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    fh = (out / LOCK_NAME).open("a+")

    def refusal() -> str:
        fh.seek(0)
        holder = fh.read().strip() or "another command"
        fh.close()
        return f"--out {out} is in use by {holder}: wait for it to end, or use another --out"

    lock_or_refuse(fh, refusal, f"--out {out}")
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{command} (process {os.getpid()})")
        fh.flush()
        yield
    except BaseException:
        if made and not any(p.name != LOCK_NAME and not p.is_dir() for p in out.rglob("*")):
            (out / LOCK_NAME).unlink(missing_ok=True)
            remove_if_empty(out)
        raise
    finally:
        fh.close()  # the lock goes with the file


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when it holds nothing but empty folders (what a refused command made of it)."""
    if not folder.is_dir() or any(not p.is_dir() for p in folder.rglob("*")):
        return
    for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    folder.rmdir()
