"""The fault proxy itself: transparent by default, and each fault does what it says."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from fault_proxy import Fault, FaultProxy

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def sender():
    """A server that sends PAYLOAD to every connection, then closes."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(PAYLOAD)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def _receive(port: int, timeout: float = 5) -> tuple[bytes, str]:
    data = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            return bytes(data), "reset"
        except TimeoutError:
            return bytes(data), "timeout"
    return bytes(data), "eof"


def test_transparent_without_faults(sender):
    with FaultProxy(sender) as proxy:
        data, end = _receive(proxy.port)
    assert (data, end) == (PAYLOAD, "eof")
    assert proxy.connections == 1


@pytest.mark.parametrize("action,expected_end", [("cut", "eof"), ("reset", "reset")])
def test_cut_and_reset_at_offset_on_first_connection_only(sender, action, expected_end):
    with FaultProxy(sender) as proxy:
        proxy.add(Fault(action, direction="down", at=300_000, connection=1))
        first, end = _receive(proxy.port)
        second, end2 = _receive(proxy.port)
    assert end == expected_end
    if action == "cut":
        assert first == PAYLOAD[:300_000]
    else:  # a reset may discard what the client had not read yet
        assert len(first) <= 300_000 and first == PAYLOAD[: len(first)]
    assert (second, end2) == (PAYLOAD, "eof")
    assert proxy.fired == 1


def test_stall_holds_connection_until_released(sender):
    with FaultProxy(sender) as proxy:
        proxy.add(Fault("stall", direction="down", at=1000))
        started = time.monotonic()
        data, end = _receive(proxy.port, timeout=0.5)
        assert (len(data), end) == (1000, "timeout")
        assert time.monotonic() - started < 3
        proxy.release()
        data, end = _receive(proxy.port)
        assert (data, end) == (PAYLOAD, "eof")
