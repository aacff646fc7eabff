"""HTTP credentials from the environment reach the destination's origin and no other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jupyter_publish.backends.http import HttpBackend


class _Recorder(BaseHTTPRequestHandler):
    """Serves b"payload" and remembers the headers of every request; /go redirects."""

    seen: list[dict[str, str]]
    redirect_to = ""

    def do_GET(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/go" and self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"payload")

    def log_message(self, *args: object) -> None:
        pass


def _server() -> tuple[ThreadingHTTPServer, type[_Recorder]]:
    handler = type("H", (_Recorder,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def two_origins() -> Iterator[tuple[str, type[_Recorder], str, type[_Recorder]]]:
    a, a_handler = _server()
    b, b_handler = _server()
    try:
        yield f"http://127.0.0.1:{a.server_port}", a_handler, f"http://127.0.0.1:{b.server_port}", b_handler
    finally:
        a.shutdown()
        b.shutdown()


def test_credentials_go_only_to_the_destination_origin(two_origins, monkeypatch):
    a_url, a_seen, b_url, b_seen = two_origins
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", "X-Token: s3cr3t-token")
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", "ana:pa55word")
    backend = HttpBackend(url=a_url + "/drop/")
    assert b"".join(backend.read(a_url + "/file")) == b"payload"
    assert a_seen.seen[-1]["x-token"] == "s3cr3t-token" and "authorization" in a_seen.seen[-1]

    assert b"".join(backend.read(b_url + "/file")) == b"payload"  # another origin
    a_seen.redirect_to = b_url + "/landing"
    assert b"".join(backend.read(a_url + "/go")) == b"payload"  # redirected to another origin
    for request in b_seen.seen:
        assert "x-token" not in request and "authorization" not in request
    assert len(b_seen.seen) == 2


def test_no_destination_means_no_credentials(two_origins, monkeypatch):
    a_url, a_seen, _, _ = two_origins
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", "X-Token: s3cr3t-token")
    assert b"".join(HttpBackend(url="").read(a_url + "/file")) == b"payload"
    assert "x-token" not in a_seen.seen[-1]
