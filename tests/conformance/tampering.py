"""A hostile node for a content-addressed store: an HTTP proxy that changes what it serves.

IPFS content cannot be changed where it is stored (the CID is the content's hash), so the
attack is an answer that lies: a node or gateway serving other bytes for a CID. The proxy
sits in front of the real js-ipfs node on 127.0.0.1, forwards every request unchanged and
flips one byte in the middle of every body it returns for a content read (``cat`` on the
RPC API, ``/ipfs/…`` on a gateway), keeping its length. Request bodies are forwarded by
``Content-Length`` only (a fetch sends none that are chunked).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
_CONTENT_READS = ("/api/v0/cat", "/ipfs/")


class TamperingProxy:
    """``with TamperingProxy(node.api_url) as proxy: fetch(..., api=proxy.url)``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tampered = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._forward(self)

            do_POST = do_HEAD = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TamperingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="tampering-proxy").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
        response = self._client.request(
            handler.command, self.upstream + handler.path, content=body, headers=headers
        )
        data = bytearray(response.content)
        if data and response.is_success and handler.path.startswith(_CONTENT_READS):
            data[len(data) // 2] ^= 0xFF
            with self._lock:
                self.tampered += 1
        handler.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in _HOP | {"content-length", "content-encoding"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(bytes(data))
