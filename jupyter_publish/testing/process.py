"""Start a server process on loopback, wait for it, stop it by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"


def free_port(avoid: Sequence[int] = ()) -> int:
    """A TCP port free on 127.0.0.1 right now (SeaweedFS also needs port+10000 free)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port in avoid or port + 10000 > 65535:
            continue
        return port
    raise RuntimeError("no free loopback port found")


def free_ports(count: int, *, grpc_offset: int | None = None) -> list[int]:
    """``count`` distinct free ports; with ``grpc_offset`` each port+offset is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(avoid=ports)
        if grpc_offset is not None:
            if port + grpc_offset > 65535 or not _is_free(port + grpc_offset):
                continue
            if any(abs(p - port) == grpc_offset for p in ports):
                continue
        ports.append(port)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


class ServerProcess:
    """A child process we own: started in its own session, stopped by PID.

    Subclasses build the command in :meth:`command` and say when it is ready in
    :meth:`ready`. Output goes to ``log_path`` so a failed start can show its tail.
    """

    name = "server"
    start_timeout = 60.0
    stop_signal = signal.SIGTERM
    start_attempts = 3
    """Free ports can be taken by another process before ours binds them: retry."""
    port_conflict = "address already in use"

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"jp-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # -- to override -------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Choose ports and reset state before each start attempt."""

    # -- lifecycle -----------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ServerProcess:
        """Start on fresh ports; retry when another process grabbed one of them first."""
        for attempt in range(1, self.start_attempts + 1):
            self.prepare()
            try:
                return self._start_once()
            except RuntimeError:
                if attempt == self.start_attempts or self.port_conflict not in self.log_tail().lower():
                    raise
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def serving(self) -> Iterator[ServerProcess]:
        """Started for the duration of a ``with`` block; stopped by PID and cleaned up after."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _start_once(self) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its life
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env=self.env(),
            start_new_session=True,
        )
        log.close()
        self._wait(self.ready, self.start_timeout)
        return self

    def _wait(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """Signal the process group by PID, then kill it if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, self.stop_signal)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
