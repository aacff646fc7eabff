"""Serve the local store read-only over HTTP on loopback, to its owner only.

Like Bacalhau's Local publisher, a local result then also has an HTTP URL
(``http://127.0.0.1:PORT/<token>/<jobID>/<path>``), but every file is still addressed
by its sha256, so a fetch through that URL is verified as well. While the server runs
its address is kept in ``<home>/serve.json``; new local publishes include links to it.

Loopback is shared by every account on the machine (JupyterHub, HPC login nodes), so,
like Jupyter's own server, every URL carries a random token (as its first path segment,
or ``?token=``); a request without it gets 403. The token is kept in
``<home>/serve-token`` (0600), so recorded links keep working after a restart.

It is also a place to look: ``/TOKEN/`` lists the ledger's jobs and ``/TOKEN/JOB/`` one
job's files, as plain escaped HTML (:mod:`jupyter_publish.serve_pages`), no script.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import posixpath
import re
import secrets
import signal
import socket
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

from . import config
from .backends import RemoteObject
from .backends.local import LocalBackend
from .errors import NotFoundError, PublishError
from .ledger import Ledger
from .serve_state import running_server_url as running_server_url  # kept importable from here
from .serve_state import state_file
from .sizes import CHUNK


def serve_token() -> str:
    """This home's serve token: made once (random, 0600), then reused."""
    path = config.home() / "serve-token"
    with contextlib.suppress(FileNotFoundError):
        token = path.read_text().strip()
        if len(token) >= 32:
            config.private_file(path)
            return token
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".serve-token.{os.getpid()}")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, config.PRIVATE_FILE), "w") as out:
        out.write(token)
    os.replace(tmp, path)
    return token


def _position(digits: str) -> int:
    """A byte position in a Range header. Past 19 digits it is beyond any file (2**63
    bytes) and only its order matters: int() refuses more than 4300 digits, so a longer
    one would have dropped the connection unanswered."""
    digits = digits.lstrip("0")
    return int(digits or "0") if len(digits) < 20 else 10**19


class _StoreHandler(BaseHTTPRequestHandler):
    store: LocalBackend
    token: str
    server_version = "jupyter-publish"
    timeout = 60
    """Seconds a connection may stay silent: without it, anyone on the machine could hold
    one thread per idle connection forever (the token is read only after the request line)."""

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _authorized_path(self) -> str | None:
        """The path after the token (``/TOKEN/JOB/PATH`` or ``/JOB/PATH?token=TOKEN``)."""
        parts = urllib.parse.urlsplit(self.path)
        given = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
        path = parts.path
        if not given:
            given, _, rest = path.lstrip("/").partition("/")
            path = "/" + rest
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        return path

    def _serve(self, body: bool) -> None:
        raw = self._authorized_path()
        if raw is None:
            self.send_error(HTTPStatus.FORBIDDEN, "use the URL (with its token) that serve printed")
            return
        path = urllib.parse.unquote(raw)
        clean = posixpath.normpath(path).lstrip("/")
        job_id, _, name = clean.partition("/")
        if clean.startswith("..") or "\x00" in clean:
            self.send_error(HTTPStatus.NOT_FOUND, "use /JOB_ID/PATH")
            return
        if clean in ("", "."):
            self._send_page(self._jobs_page(), body)
            return
        if not name:
            page = self._job_page(job_id)
            if page is None:
                self.send_error(HTTPStatus.NOT_FOUND, "no such job")
            else:
                self._send_page(page, body)
            return
        try:
            (obj,) = [o for o in self.store.list(f"local://{job_id}/{name}") if o.name]
        except (PublishError, ValueError, FileNotFoundError):  # an archive's blob gone too
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        with contextlib.ExitStack() as stack:
            blob: BinaryIO | None = None
            try:  # before the status line: a blob gone from the store is a 404, not a 200 cut off
                if obj.sha256:
                    blob = stack.enter_context(open(self.store.blob_path(obj.sha256), "rb"))
            except FileNotFoundError:
                self.send_error(HTTPStatus.NOT_FOUND, "the stored copy of this file is gone")
                return
            self._send_file(obj, blob, obj.sha256 or self._recorded_sha256(job_id, name), body)

    def _send_file(self, obj: RemoteObject, blob: BinaryIO | None, sha256: str | None, body: bool) -> None:
        """The status line, headers and (for a GET) the bytes of one stored file: from its
        open ``blob``, or read out of the stored archive it is a member of."""
        # A stored blob can be read from any offset: a range is honoured, so a fetch of a
        # served link reads big files in parallel ranges and resumes where it was cut.
        seekable = obj.sha256 is not None and obj.size is not None
        span = self._requested_range(obj.size, sha256) if seekable else None
        if span == "unsatisfiable":
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{obj.size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(span, tuple):
            first, last = span
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {first}-{last}/{obj.size}")
            self.send_header("Content-Length", str(last - first + 1))
        else:
            first, last = 0, (obj.size or 0) - 1
            self.send_response(HTTPStatus.OK)
            if obj.size is not None:
                self.send_header("Content-Length", str(obj.size))
        if seekable:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        # A published file is data, never a page of this origin (whose pages list every
        # job and carry the token): no sniffing it into HTML, no script if a browser does.
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if sha256:
            self.send_header("ETag", f'"{sha256}"')
            self.send_header("X-Checksum-Sha256", sha256)
        self.end_headers()
        if not body:
            return
        if blob is not None:
            blob.seek(first)
            left = last - first + 1
            while left > 0 and (chunk := blob.read(min(CHUNK, left))):
                self.wfile.write(chunk)
                left -= len(chunk)
        else:  # a file inside an archive publish, read out of the stored archive
            for chunk in self.store.read(obj.location):
                self.wfile.write(chunk)

    def _requested_range(self, size: int | None, sha256: str | None) -> tuple[int, int] | str | None:
        """The one byte range asked for (first, last), ``"unsatisfiable"``, or None for the
        whole file: no Range, an If-Range that no longer matches, or a form this server
        does not split (several ranges, a malformed header), which RFC 9110 lets it ignore."""
        headers = self.headers.get_all("Range") or []
        # Ranges are for GET only (RFC 9110 14.2); Range is one field: two are malformed.
        if self.command != "GET" or len(headers) != 1 or size is None:
            return None
        condition = self.headers.get("If-Range")
        if condition is not None and condition.strip() != f'"{sha256}"':
            return None
        # ASCII only: unicode \s also takes NBSP, U+0085 and U+001C..U+001F (headers are Latin-1).
        match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", headers[0], re.ASCII)
        if match is None or not any(match.groups()):
            return None
        start, end = match.groups()
        if not start:  # the last N bytes
            suffix = _position(end)
            if suffix == 0:
                return "unsatisfiable"
            if size == 0:  # satisfiable (RFC 9110 14.1.1), but no 206 can say "no bytes"
                return None
            return max(0, size - suffix), size - 1
        first = _position(start)
        last = min(_position(end), size - 1) if end else size - 1
        if end and _position(end) < first:
            return None  # an invalid range is ignored, not refused
        if first >= size:
            return "unsatisfiable"
        return first, last

    # -- the pages a person looks at ---------------------------------------------------
    def _send_page(self, page: bytes, body: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        # No script runs, whatever a job or file is named; nothing loads from elsewhere.
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # links carry the token
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(page)

    def _stored_jobs(self) -> set[str]:
        return {p.stem for p in (self.store.root / "jobs").glob("*.json")}

    def _jobs_page(self) -> bytes:
        from .serve_pages import jobs_page

        jobs = Ledger().jobs()
        known = {j["job_id"] for j in jobs}
        return jobs_page(self.token, jobs, self._stored_jobs() - known)

    def _job_page(self, job_id: str) -> bytes | None:
        from .serve_pages import job_page

        ledger = Ledger()
        job: dict[str, Any] | None
        try:
            job = ledger.job_row(job_id)
        except NotFoundError:
            job = None
        if job is not None:
            job_id = job["job_id"]  # a unique prefix of it was enough
        stored = job_id in self._stored_jobs()  # its files are in the local store: served here
        if job is not None:
            files = [f for f in ledger.files(job_id) if f["kind"] in ("file", "archive")]
            return job_page(self.token, job, job_id, files, stored)
        if not stored:
            return None
        try:
            entries = self.store.list(f"local://{job_id}/")
        except PublishError:
            return None
        files = [{"path": o.name, "size": o.size, "sha256": o.sha256} for o in entries]
        return job_page(self.token, None, job_id, files, True)

    @staticmethod
    def _recorded_sha256(job_id: str, name: str) -> str | None:
        row = Ledger().find_file(job_id, name)
        return None if row is None else str(row["sha256"])

    def do_PUT(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the local store is served read-only")

    do_POST = do_DELETE = do_PUT

    def log_message(self, format: str, *args: object) -> None:  # quiet by default
        pass


class _StoreServer(ThreadingHTTPServer):
    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """A client that hangs up mid-answer (a cancelled fetch, a browser moving on, a
        parallel ranged read stopped) is normal, not a traceback in the owner's terminal."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(port: int = 0, token: str | None = None) -> ThreadingHTTPServer:
    """A read-only server for the local store, bound to 127.0.0.1 only, behind ``token``
    (default: this home's :func:`serve_token`)."""
    attrs = {"store": LocalBackend(prefix="serve"), "token": token or serve_token()}
    handler = type("Handler", (_StoreHandler,), attrs)
    return _StoreServer(("127.0.0.1", port), handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(port: int = 0) -> None:
    """Serve until interrupted, advertising the URL in ``serve.json`` meanwhile."""
    token = serve_token()
    server = make_server(port, token)
    url = f"http://127.0.0.1:{server.server_address[1]}/{token}"
    state = json.dumps({"url": url, "pid": os.getpid()})
    config.private_file(state_file()).write_text(state)  # it names the token: 0600
    where = f"serving {config.home() / 'store'} read-only at {url}/JOB_ID/PATH"
    print(f"{where}; jobs listed at {url}/ (Ctrl-C stops)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` cleans up like Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        with contextlib.suppress(OSError):
            state_file().unlink()
