"""Python programs started as ``subprocess`` starts them, minus the seconds spent importing torch.

A command-line run spends most of its start importing torch, Lightning, torchmetrics and Hydra (about 7 s
of 9 s on two cores). :func:`popen` and :func:`run` take the arguments of ``subprocess.Popen`` and
``subprocess.run`` for the tests' commands (``python SCRIPT ARGS``, ``python -m MODULE ARGS``, or an
installed entry-point script such as ``.venv/bin/lossbench``) and start the program in a process forked
from a server (one per test process) that has imported those libraries (and nothing of lossbench) and done
nothing else. The child then is what a fresh ``python SCRIPT ARGS`` would be:

- its own process, with its own pid (signals, SIGKILL included, reach it alone), working directory,
  environment (``os.environ`` replaced by the one given), stdin/stdout/stderr (pipes, files or
  ``/dev/null``), ``sys.argv`` and ``sys.path`` (the script's folder, or the working directory for
  ``-m``, then the ``PYTHONPATH`` given);
- SIGINT raises ``KeyboardInterrupt`` and SIGTERM ends it, as in a fresh interpreter; NumPy's global
  generator is seeded afresh (Python's ``random`` reseeds itself after a fork);
- the script runs as ``__main__`` at the top level of the child's interpreter: an uncaught exception
  prints its traceback and exits 1, ``sys.exit(n)`` exits ``n``, ``atexit`` handlers run, and the exit
  status (``-N`` for signal N) is ``returncode`` as ``subprocess`` gives it.

What differs: the libraries were imported before the script ran, with the server's environment. A command
whose environment changes a variable read while they load (``PYTHON*`` but ``PYTHONUNBUFFERED`` and
``PYTHONPATH``, ``OMP_*``, ``MKL_*``, ``LD_*``, ...) is started as a fresh interpreter by ``subprocess``
itself, as is any command that is not a Python script, and a test about the start itself (imports,
start-up time) uses ``subprocess`` directly. Every child of one server shares its hash seed. The server's
stdout is unbuffered (``PYTHONUNBUFFERED=1``), and its threads wait passively
(``OMP_WAIT_POLICY=PASSIVE``: lossbench's choice on a busy machine, which a test run is).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

#: what the server imports before it forks: what every lossbench run imports, and nothing of lossbench
PRELOAD = ("numpy", "torch", "torchmetrics", "lightning", "omegaconf", "hydra")
#: environment variables read while those libraries load (a command that changes one starts afresh)
AT_IMPORT = ("PYTHON", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "LD_", "MALLOC_", "TORCH", "PYTORCH_", "CUDA_")
SERVER_ENV = {"PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE"}


# --- the server (this file run as a script) ----------------------------------------------------------------
def serve(address: str) -> dict[str, Any]:
    """Import :data:`PRELOAD`, then fork one child per request on ``address``; returns only in a child,
    with its request (the parent relays each child's exit status on its request's connection)."""
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
            conn.sendall(f"{pid}".encode())
            running[pid] = conn
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = running.pop(pid)
            conn.sendall(f"{os.waitstatus_to_exitcode(status)}".encode())
            conn.close()
    sys.exit(0)


def select_one(sock: socket.socket, timeout: float) -> bool:
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
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import numpy

    numpy.random.seed()
    # sys.path as a fresh interpreter starts it: the script's folder (``-m``: the working directory), then
    # the PYTHONPATH entries, then the rest
    first = Path.cwd() if request["module"] else Path(request["argv"][0]).resolve().parent
    given = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ours = {p for p in request["server_pythonpath"].split(os.pathsep) if p}
    sys.path[:] = [str(first), *given, *(p for p in sys.path[1:] if p not in ours)]
    sys.argv = list(request["argv"])
    return request


# --- the client (the tests) ------------------------------------------------------------------------------
class Server:
    """This test process's server, started on first use and stopped when the process exits."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.address = ""

    def ready(self) -> str:
        if self.proc is None:
            folder = Path(tempfile.mkdtemp(prefix="preloaded-"))
            self.address = str(folder / "socket")
            self.env = {**os.environ, **SERVER_ENV}
            self.log = open(folder / "server.log", "w")  # noqa: SIM115 - open while the server runs
            self.proc = subprocess.Popen(
                [sys.executable, __file__, self.address],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            atexit.register(self.proc.kill)
        deadline = time.monotonic() + 300
        while not os.path.exists(self.address):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the preloaded Python server did not start: see {self.log.name}")
            time.sleep(0.05)
        return self.address

    def takes(self, cmd: list[str], env: dict[str, str]) -> list[str] | None:
        """``cmd`` as ``[script, *args]`` (or ``["-m", module, *args]``) when the server can start it, else
        None."""
        if not self.env:
            self.env = {**os.environ, **SERVER_ENV}
        keys = {k for k in {*env, *self.env} if k.startswith(AT_IMPORT) and k != "PYTHONPATH"}
        for key in keys:
            if key in SERVER_ENV:  # the server's choice, or the same one
                if key in env and env[key] != SERVER_ENV[key] and key != "PYTHONUNBUFFERED":
                    return None
            elif env.get(key) != self.env.get(key):
                return None
        if len(cmd) >= 3 and cmd[0] == sys.executable and cmd[1] == "-m":
            return list(cmd[1:])
        if len(cmd) >= 2 and cmd[0] == sys.executable and cmd[1].endswith(".py") and Path(cmd[1]).is_file():
            return list(cmd[1:])
        shebang = f"#!{sys.executable}"
        path = Path(cmd[0])
        if path.is_file() and path.parent == Path(sys.executable).parent:
            with path.open("rb") as f:
                if f.readline().decode(errors="replace").strip() == shebang:
                    return list(cmd)
        return None


SERVER = Server()


class PreloadedProcess:
    """A child of the server, as ``subprocess.Popen`` shows a child (``stdout``/``stderr`` pipes when
    asked; ``wait``, ``poll``, ``communicate``, ``send_signal``, ``terminate``, ``kill``)."""

    def __init__(self, args: list[str], conn: socket.socket, stdout: IO | None, stderr: IO | None) -> None:
        self.args, self.conn, self.stdout, self.stderr = args, conn, stdout, stderr
        self.stdin = None
        self.pid = int(conn.recv(64))
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select_one(self.conn, 0):
            self.returncode = int(self.conn.recv(64))
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
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        """Read ``stdout`` and ``stderr`` (the pipes of them) to their ends, then wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        texts: list[Any] = [None, None]

        def drain(index: int, pipe: IO) -> None:
            texts[index] = pipe.read()

        readers = [
            threading.Thread(target=drain, args=(i, pipe), daemon=True)
            for i, pipe in enumerate((self.stdout, self.stderr))
            if pipe is not None
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        for pipe in (self.stdout, self.stderr):
            if pipe is not None:
                pipe.close()
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        return texts[0], texts[1]

    def __enter__(self) -> PreloadedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for pipe in (self.stdout, self.stderr):
            if pipe is not None:
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
    opened: list[int] = []
    ours: list[IO | None] = [None, None]

    def fd_for(spec: Any, index: int, out_fd: int | None = None) -> int:
        if spec == subprocess.STDOUT:
            assert out_fd is not None
            return out_fd
        if spec == subprocess.PIPE:
            read, write = os.pipe()
            ours[index] = open(read, "r" if text else "rb")  # noqa: SIM115 - the caller reads it
            opened.append(write)
            return write
        if spec == subprocess.DEVNULL or (spec is None and index < 0):
            fd = os.open(os.devnull, os.O_RDWR)
            opened.append(fd)
            return fd
        if spec is None:
            return 1 if index == 0 else 2  # inherit, as subprocess does
        return spec if isinstance(spec, int) else spec.fileno()

    fds = [fd_for(stdin, -1)]
    fds.append(fd_for(stdout, 0))
    fds.append(fd_for(stderr, 1, fds[1]))
    module = script[0] == "-m"
    request = {
        "argv": script[1:] if module else script,
        "module": module,
        "cwd": str(Path(cwd or os.getcwd()).resolve()),
        "env": env,
        "server_pythonpath": SERVER.env.get("PYTHONPATH", ""),
    }
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(SERVER.ready())
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
        proc.wait()
        raise
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


if __name__ == "__main__":
    import runpy

    job = serve(sys.argv[1])  # returns in a child only
    if job["module"]:
        runpy.run_module(job["argv"][0], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(job["argv"][0], run_name="__main__")
