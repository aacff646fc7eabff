"""Attacks on item 5 (transient faults are retried) that the first suite missed.

* A connection reset while it is being set up (a server restarting, a full accept queue,
  a middlebox) surfaced as ``ConnectError`` and was taken for "nothing listens there":
  one reset failed an HTTP or IPFS fetch or publish with no retry.
* The HTTP read-back (the HEAD after an upload) was not retried: one connection dropped
  while asking failed the publish of an object that was stored whole.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fault_proxy import Fault, FaultProxy
from rel_stores import Store, source

import jupyter_publish as jp
from jupyter_publish.backends.http import HttpBackend
from jupyter_publish.backends.kubo import KuboClient
from jupyter_publish.errors import BackendError, TransientError
from jupyter_publish.ledger import Ledger
from jupyter_publish.retry import reset_while_connecting

TRIALS = 4


@pytest.fixture(autouse=True)
def _policy(monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "2")
    monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", "5")


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind", ["http", "ipfs"])
def test_a_reset_at_connect_is_retried(request, tmp_path, kind):
    """A RST right after accept: each publish and fetch still ends whole and verified."""
    store = Store(kind, request)
    src = source(tmp_path, 100_000)
    with FaultProxy(store.port) as proxy:
        for trial in range(TRIALS):
            proxy.add(Fault("reset", direction="up", at=0))
            result = store.publish(src, proxy)
            proxy.add(Fault("reset", direction="up", at=0))
            fetched = store.fetch(result, tmp_path / f"out{trial}", proxy)
            assert fetched.files[0].path.read_bytes() == (src / "data.bin").read_bytes()
        assert proxy.fired == 2 * TRIALS


def test_reset_while_connecting_is_told_from_a_refusal():
    port = _free_port()
    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert not reset_while_connecting(refused.value)
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError as cause:
        wrapped = httpx.ConnectError(str(cause))
        wrapped.__cause__ = cause
    assert reset_while_connecting(wrapped)
    # Both httpx backends take it for a fault to retry, and a refusal for a final answer.
    http = HttpBackend(url=f"http://127.0.0.1:{port}/drop/")
    assert type(http._transport_error(http.url, wrapped)) is TransientError
    assert type(http._transport_error(http.url, refused.value)) is BackendError
    kubo = KuboClient(f"http://127.0.0.1:{port}")
    assert type(kubo._transport_error(wrapped, "add", None)) is TransientError
    assert type(kubo._transport_error(refused.value, "add", None)) is BackendError


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _DropsFirstHead(BaseHTTPRequestHandler):
    """A WebDAV-like drop whose first HEAD finds the connection dropped (no answer)."""

    objects: dict[str, bytes]
    heads = 0
    lock = threading.Lock()

    def do_PUT(self) -> None:
        self.objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        with self.lock:
            type(self).heads += 1
            first = self.heads == 1
        if first:
            self.close_connection = True
            return  # nothing sent: the client sees the connection end
        data = self.objects.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_dropped_read_back_is_asked_again(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_DropsFirstHead,), {"objects": {}}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = source(tmp_path, 10_000)
        result = jp.publish(src, f"http://127.0.0.1:{server.server_address[1]}/drop/", archive=False)
        assert Ledger().status(result.job_id)["status"] == "published"
        assert server.RequestHandlerClass.heads == 2
    finally:
        server.shutdown()
        server.server_close()
