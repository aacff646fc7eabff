"""Small fake HTTP drops for misbehaviour nginx cannot be made to show.

``Drop`` takes PUT uploads (Content-Length or chunked) and answers with a download URL
that may name another origin; ``Files`` serves what was stored and records every
request's headers. Modes make the drop lie (200 and nothing stored), cut the stored
body short, or echo the request's ``Authorization`` header in an error body.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote


class Store:
    """What the fake servers share: stored objects and the headers each one received."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.seen: dict[str, list[dict[str, str]]] = {"drop": [], "files": []}
        self.lock = threading.Lock()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        data = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(data)
            data += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _echo(form: str, header: str) -> str:
    """The Authorization header as a careless server might echo it."""
    decoded = base64.b64decode(header.split()[-1]).decode() if header.startswith("Basic ") else header
    return {
        "header": f"bad request: Authorization: {header}",
        "decoded": f"bad request for {decoded}",
        "urlencoded": f"bad request: auth={quote(decoded, safe='')}",
        "json": "bad request: " + json.dumps({"auth": decoded, "header": header}),
        "b64blob": "trace " + base64.b64encode(f"GET /\r\nAuthorization: {header}\r\n".encode()).decode(),
    }[form]


class _Handler(BaseHTTPRequestHandler):
    store: Store
    role: str
    mode: str
    files_base: str

    def _record(self) -> None:
        with self.store.lock:
            self.store.seen[self.role].append({k.lower(): v for k, v in self.headers.items()})

    def do_PUT(self) -> None:
        self._record()
        body = _read_body(self)
        key = unquote(self.path.split("?")[0]).strip("/")
        if self.mode.startswith("echo-"):
            self._answer(400, _echo(self.mode[5:], self.headers.get("Authorization", "")).encode())
            return
        if self.mode == "short":
            body = body[: len(body) // 2]
        if self.mode != "liar":
            with self.store.lock:
                self.store.objects[key] = body
        where = f"{self.files_base}/files/{quote(key)}\n" if self.files_base else ""
        self._answer(200 if self.mode == "liar" else 201, where.encode())

    def do_HEAD(self) -> None:
        self._get(body=False)

    def do_GET(self) -> None:
        self._get(body=True)

    def _get(self, body: bool) -> None:
        self._record()
        if not body and self.mode == "no-head":
            self._answer(405, b"")
            return
        key = unquote(self.path.split("?")[0]).strip("/")
        key = key[len("files/") :] if key.startswith("files/") else key
        data = self.store.objects.get(key)
        if data is None:
            self._answer(404, b"not here\n")
            return
        ranged = self.headers.get("Range", "")
        if ranged == "bytes=0-0" and data:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-0/{len(data)}")
            self.send_header("Content-Length", "1")
            self.end_headers()
            if body:
                self.wfile.write(data[:1])
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class FakeServer:
    """One fake server in a thread on 127.0.0.1."""

    def __init__(self, store: Store, role: str, mode: str = "", files_base: str = "") -> None:
        attrs = {"store": store, "role": role, "mode": mode, "files_base": files_base}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), attrs))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
