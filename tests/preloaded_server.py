"""The server of :mod:`tests.preloaded`: ``python tests/preloaded_server.py SOCKET`` imports
:data:`PRELOAD`, then forks one child per request on ``SOCKET``; each child becomes the requested command
(:func:`become`) and runs it at the top level of this interpreter, as ``python SCRIPT ARGS`` would."""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

#: what the server imports before it forks: what every lossbench run imports, and nothing of lossbench
PRELOAD = ("numpy", "torch", "torchmetrics", "lightning", "omegaconf", "hydra")


def serve(address: str) -> dict[str, Any]:
    """Import :data:`PRELOAD`, then fork one child per request on ``address``; returns only in a child,
    with its request (the parent relays each child's pid, then its exit status, on the request's
    connection; a client that went away is forgotten)."""
    for name in PRELOAD:
        __import__(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address + ".tmp")
    listener.listen(64)
    os.rename(address + ".tmp", address)  # ready
    parent, running = os.getppid(), {}
    while os.getppid() == parent:  # the test process that started it is alive
        if select_one(listener, 0.05):
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in running.values():
                    other.close()
                conn.close()
                return become(json.loads(message), fds)
            for fd in fds:
                os.close(fd)
            tell(conn, pid)
            running[pid] = conn
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = running.pop(pid)
            tell(conn, os.waitstatus_to_exitcode(status))
            conn.close()
    sys.exit(0)


def tell(conn: socket.socket, number: int) -> None:
    with contextlib.suppress(OSError):  # the test dropped its process object: nobody waits for this one
        conn.sendall(str(number).encode())


def select_one(sock: socket.socket, timeout: float | None) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def become(request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
    """In the child: take the request's stdio, directory, environment, signals and arguments."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # found again from TMPDIR at its next use
    # a signal the test process ignores stays ignored, as across exec; else Python's own handling
    ignored = set(request["ignored_signals"])
    signal.signal(signal.SIGINT, signal.SIG_IGN if signal.SIGINT in ignored else signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if signal.SIGTERM in ignored else signal.SIG_DFL)
    import numpy

    numpy.random.seed()
    fresh_stdio()
    # sys.path as a fresh interpreter starts it: the script's folder (``-m``: the working directory), then
    # the PYTHONPATH entries (made absolute), then the rest
    first = Path.cwd() if request["module"] else Path(request["argv"][0]).resolve().parent
    given = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ours = {os.path.abspath(p) for p in request["server_pythonpath"].split(os.pathsep) if p}
    sys.path[:] = [str(first), *given, *(p for p in sys.path[1:] if os.path.abspath(p) not in ours)]
    sys.argv = list(request["argv"])
    sys.excepthook = script_excepthook
    return request


def fresh_stdio() -> None:
    """``sys.stdout``/``sys.stderr`` on the new fds 1 and 2, buffered as Python's start-up buffers them:
    unbuffered with ``PYTHONUNBUFFERED``, else stdout line-buffered on a terminal and block-buffered
    otherwise, stderr line-buffered."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        raw = io.FileIO(fd, "w", closefd=False)
        binary = raw if unbuffered else io.BufferedWriter(raw)
        line = not unbuffered and (fd == 2 or os.isatty(fd))
        stream = io.TextIOWrapper(
            binary, encoding=old.encoding, errors=old.errors, line_buffering=line, write_through=unbuffered
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def script_excepthook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    """Python's traceback of an uncaught exception, less the frames of this file and of ``runpy`` above
    the script's (a fresh interpreter's traceback starts at the script)."""
    while tb is not None and (tb.tb_frame.f_code.co_filename in (__file__, "<frozen runpy>")):
        tb = tb.tb_next
    sys.__excepthook__(kind, err.with_traceback(tb), tb)  # Python prints the exception's own traceback


if __name__ == "__main__":
    import runpy

    job = serve(sys.argv[1])  # returns in a child only
    if job["module"]:
        runpy.run_module(job["argv"][0], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(job["argv"][0], run_name="__main__")
