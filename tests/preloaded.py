"""Python programs started as ``subprocess`` starts them, minus the seconds spent importing torch.

A command-line run spends most of its start importing torch, Lightning, torchmetrics and Hydra (about 7 s
of 9 s on two cores). :func:`popen` and :func:`run` take the arguments of ``subprocess.Popen`` and
``subprocess.run`` for the tests' commands (``python SCRIPT ARGS``, ``python -m MODULE ARGS``, or an
installed entry-point script such as ``.venv/bin/lossbench``) and start the program in a process forked
from a server (:mod:`tests.preloaded_server`, one per test process) that has imported those libraries (and
nothing of lossbench) and done nothing else. The child then is what a fresh ``python SCRIPT ARGS`` would
be:

- its own process, with its own pid (signals, SIGKILL included, reach it alone), working directory,
  environment (``os.environ`` replaced by the one given), stdin/stdout/stderr (pipes, files or
  ``/dev/null``; buffered as Python buffers them, ``PYTHONUNBUFFERED`` included), ``sys.argv`` and
  ``sys.path`` (the script's folder, or the working directory for ``-m``, then the ``PYTHONPATH`` given);
- SIGINT raises ``KeyboardInterrupt`` and SIGTERM ends it, as in a fresh interpreter (either stays ignored
  where this process ignores it); NumPy's global generator is seeded afresh (Python's ``random`` reseeds
  itself after a fork), and ``tempfile`` finds its folder from the environment given;
- the script runs as ``__main__`` at the top level of the child's interpreter: an uncaught exception
  prints its traceback (from the script's frame on) and exits 1, ``sys.exit(n)`` exits ``n``, ``atexit``
  handlers run, and the exit status (``-N`` for signal N) is ``returncode`` as ``subprocess`` gives it.

What differs: the libraries were imported before the script ran, with the server's environment, so the
start takes no time for them (a test of a budget that counts the start, or of the start itself, uses
``subprocess``). A command whose environment changes a variable read while they load (:data:`AT_IMPORT`:
``PYTHON*`` but ``PYTHONUNBUFFERED`` and ``PYTHONPATH``, ``OMP_*``, the ranks Lightning reads, the
locale, ...) is started as a fresh interpreter by ``subprocess`` itself, as is any command that is not a
Python script. Every child of one server shares its hash seed. The server's threads wait passively
(``OMP_WAIT_POLICY=PASSIVE``: lossbench's choice on a busy machine, which a test run is).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from tests.preloaded_server import select_one

SERVER_SCRIPT = Path(__file__).with_name("preloaded_server.py")
#: environment variables read while the preloaded libraries load: a command that changes one starts afresh
AT_IMPORT = ("PYTHON", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "LD_", "MALLOC_", "TORCH", "PYTORCH_", "CUDA_")
AT_IMPORT += ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "LANG", "LC_", "MPL")
#: read by the child itself: ``PYTHONPATH`` (its ``sys.path``), ``PYTHONUNBUFFERED`` (its stdio), and what
#: torch reads at each ``torch.cuda.is_available()`` (importing Lightning sets it in the test process, and
#: ``lossbench.run`` unsets it without a GPU)
CHILD_READS = ("PYTHONPATH", "PYTHONUNBUFFERED", "PYTORCH_NVML_BASED_CUDA_CHECK")
SERVER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


class Server:
    """This test process's server, started on first use (again if it died) and stopped at exit."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.started_env: dict[str, str] = {}
        self.address = ""
        self.log: IO | None = None

    def ready(self) -> str:
        if self.proc is None or self.proc.poll() is not None:
            folder = Path(tempfile.mkdtemp(prefix="preloaded-"))
            self.address = str(folder / "socket")
            self.started_env = self.env
            self.log = open(folder / "server.log", "w")  # noqa: SIM115 - open while the server runs
            self.proc = subprocess.Popen(
                [sys.executable, str(SERVER_SCRIPT), self.address],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            atexit.register(self.proc.kill)
        deadline = time.monotonic() + 300
        while not os.path.exists(self.address):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the preloaded Python server did not start: see {self.where()}")
            time.sleep(0.05)
        return self.address

    @property
    def env(self) -> dict[str, str]:
        """The server's environment (before it starts: the one it would start with)."""
        return self.started_env if self.proc is not None else {**os.environ, **SERVER_ENV}

    def where(self) -> str:
        return self.log.name if self.log is not None else "(not started)"

    def takes(self, cmd: list[str], env: dict[str, str]) -> list[str] | None:
        """``cmd`` as ``[script, *args]`` (or ``["-m", module, *args]``) when the server can start it, else
        None (a Python command started afresh for its environment is noted in the server's log)."""
        for key in sorted(k for k in {*env, *self.env} if k.startswith(AT_IMPORT) and k not in CHILD_READS):
            if key in SERVER_ENV:  # the server's choice, or the same one
                differs = key in env and env[key] != SERVER_ENV[key]
            else:
                differs = env.get(key) != self.env.get(key)
            if differs:
                if self.log is not None:
                    said = f"afresh: {key}={env.get(key)!r} (the server's {self.env.get(key)!r}):"
                    print(said, *cmd, file=self.log, flush=True)
                return None
        if len(cmd) >= 3 and cmd[0] == sys.executable and cmd[1] == "-m":
            return list(cmd[1:])
        if len(cmd) >= 2 and cmd[0] == sys.executable and cmd[1].endswith(".py") and Path(cmd[1]).is_file():
            return list(cmd[1:])
        path = Path(cmd[0])
        if path.is_file() and path.parent == Path(sys.executable).parent:
            with path.open("rb") as f:
                if f.readline().decode(errors="replace").strip() == f"#!{sys.executable}":
                    return list(cmd)
        return None


SERVER = Server()


class PreloadedProcess:
    """A child of the server, as ``subprocess.Popen`` shows a child (``stdout``/``stderr`` pipes when
    asked; ``wait``, ``poll``, ``communicate``, ``send_signal``, ``terminate``, ``kill``)."""

    def __init__(self, args: list[str], conn: socket.socket, stdout: IO | None, stderr: IO | None) -> None:
        self.args, self.conn, self.stdout, self.stderr = args, conn, stdout, stderr
        self.stdin = None
        self.pid = self.receive()
        self.returncode: int | None = None
        self.readers: list[threading.Thread] = []
        self.output: list[Any] = [None, None]

    def receive(self) -> int:
        said = self.conn.recv(64)
        if not said:
            raise RuntimeError(f"the preloaded Python server died: see {SERVER.where()}")
        return int(said)

    def poll(self) -> int | None:
        if self.returncode is None and select_one(self.conn, 0):
            self.returncode = self.receive()
            self.conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select_one(self.conn, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.poll()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: ignored, as subprocess does
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        """Read ``stdout`` and ``stderr`` (the pipes of them) to their ends, then wait; after a timeout,
        a later call goes on reading where this one stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.readers:
            for index, pipe in enumerate((self.stdout, self.stderr)):
                if pipe is not None:
                    self.readers.append(threading.Thread(target=self.drain, args=(index, pipe), daemon=True))
                    self.readers[-1].start()
        for reader in self.readers:
            reader.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        return self.output[0], self.output[1]

    def drain(self, index: int, pipe: IO) -> None:
        self.output[index] = pipe.read()
        pipe.close()

    def __enter__(self) -> PreloadedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for pipe in (self.stdout, self.stderr):
            if pipe is not None and not self.readers:
                pipe.close()
        self.wait()


#: what :func:`popen` returns
Process = PreloadedProcess | subprocess.Popen


def popen(
    cmd: list[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    text: bool = False,
) -> Process:
    """``subprocess.Popen(cmd, ...)``, started from the preloaded server where it can be."""
    env = dict(os.environ if env is None else env)
    script = SERVER.takes(list(map(str, cmd)), env)
    if script is None:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr, text=text)
    if stdin == subprocess.PIPE:
        raise NotImplementedError("tests.preloaded gives a child no stdin pipe")
    address = SERVER.ready()  # started (or again) before the request reads its environment
    opened: list[int] = []
    ours: list[IO | None] = [None, None]

    def fd_for(spec: Any, index: int | None = None, out_fd: int | None = None) -> int:
        if spec == subprocess.STDOUT and out_fd is not None:
            return out_fd
        if spec == subprocess.PIPE and index is not None:
            read, write = os.pipe()
            ours[index] = open(read, "r" if text else "rb")  # noqa: SIM115 - the caller reads it
            opened.append(write)
            return write
        if spec == subprocess.DEVNULL or (spec is None and index is None):
            opened.append(os.open(os.devnull, os.O_RDWR))
            return opened[-1]
        if spec is None:
            return 1 if index == 0 else 2  # inherited, as subprocess does
        return spec if isinstance(spec, int) else spec.fileno()

    fds = [fd_for(stdin), fd_for(stdout, 0)]
    fds.append(fd_for(stderr, 1, fds[1]))
    module = script[0] == "-m"
    ignored = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is signal.SIG_IGN]
    request = {
        "argv": script[1:] if module else script,
        "module": module,
        "cwd": str(Path(cwd or os.getcwd()).resolve()),
        "env": env,
        "server_pythonpath": SERVER.env.get("PYTHONPATH", ""),
        "ignored_signals": [int(s) for s in ignored],
    }
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(address)
    socket.send_fds(conn, [json.dumps(request).encode()], fds)
    for fd in opened:
        os.close(fd)
    return PreloadedProcess(list(map(str, cmd)), conn, ours[0], ours[1])


def run(
    cmd: list[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    stdin: Any = None,
    capture_output: bool = False,
    text: bool = False,
    timeout: float | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, ...)``, started from the preloaded server where it can be."""
    pipe = subprocess.PIPE if capture_output else None
    proc = popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=pipe, stderr=pipe, text=text)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(proc.args, timeout, output=out, stderr=err) from None
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done
