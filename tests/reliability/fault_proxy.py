"""A fault-injecting TCP proxy on 127.0.0.1 for the reliability suite (stdlib only).

Sits in front of a real server (SeaweedFS, the IPFS node, nginx) and forwards every byte
unchanged, except where a :class:`Fault` says otherwise: after ``at`` bytes have passed
in one ``direction`` of the ``connection``-th connection (1-based; ``None`` = any), it

* ``cut``s the connection (a clean close of both sides, as when a peer dies),
* ``reset``s it (RST, as a middlebox or a crashed kernel would), or
* ``stall``s: stops forwarding in that direction and holds the connection open, as a
  hung server or a dead link does, until the proxy stops or :meth:`release` is called.

Each fault fires ``times`` times (then the proxy is transparent again), so "the first
connection is cut half way, the retry succeeds" is one rule::

    with FaultProxy(s3_port) as proxy:
        proxy.add(Fault("cut", direction="down", at=3_000_000, connection=1))
        client = boto3.client("s3", endpoint_url=proxy.url, ...)
        ...
        assert proxy.fired == 1

``down`` is server → client (responses, downloads), ``up`` client → server (uploads).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["cut", "reset", "stall"]
Direction = Literal["up", "down"]
CHUNK = 64 * 1024


@dataclass
class Fault:
    action: Action
    direction: Direction = "down"
    at: int = 0
    """Bytes forwarded in ``direction`` on that connection before the fault."""
    connection: int | None = None
    """1-based index of the connection it applies to; None: any connection."""
    times: int = 1
    """How many times it fires; afterwards the proxy forwards normally."""
    fired: int = field(default=0, init=False)


class FaultProxy:
    """Context manager: ``.port``, ``.url``, ``.add(fault)``, ``.connections``, ``.fired``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True, name="fault-proxy")

    # -- control ------------------------------------------------------------------
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def release(self) -> None:
        """Let every stalled connection go on forwarding."""
        self._released.set()

    @property
    def fired(self) -> int:
        with self._lock:
            return sum(f.fired for f in self._faults)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        _close(self._listener)  # shutdown() wakes the accept() in the other thread
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        self._thread.join(timeout=5)

    # -- forwarding ----------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                index = self.connections
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
            pair = (client, server)
            for direction, src, dst in (("up", client, server), ("down", server, client)):
                threading.Thread(
                    target=self._pump, args=(index, direction, src, dst, pair), daemon=True
                ).start()

    def _take_fault(self, index: int, direction: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.direction != direction or fault.fired >= fault.times:
                    continue
                if fault.connection is not None and fault.connection != index:
                    continue
                fault.fired += 1
                return fault
        return None

    def _pump(
        self,
        index: int,
        direction: str,
        src: socket.socket,
        dst: socket.socket,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        fault = self._take_fault(index, direction)
        sent = 0
        try:
            while True:
                if fault is not None and sent >= fault.at:
                    self._apply(fault, pair)
                    if fault.action != "stall":
                        return
                    fault = None
                limit = CHUNK if fault is None else max(1, min(CHUNK, fault.at - sent))
                data = src.recv(limit)
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            for sock in pair:
                _close(sock)

    def _apply(self, fault: Fault, pair: tuple[socket.socket, socket.socket]) -> None:
        if fault.action == "stall":
            # Hold both sockets open and forward nothing more in this direction.
            while not self._released.wait(0.05):
                pass
            return
        for sock in pair:
            if fault.action == "reset":
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            _close(sock, how=socket.SHUT_RD if fault.action == "reset" else socket.SHUT_RDWR)


def _close(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Shut down first: that wakes the other pump thread's recv() (close alone does not)."""
    for step in (lambda: sock.shutdown(how), sock.close):
        with contextlib.suppress(OSError):
            step()
