# ruff: noqa: E501  (the catalogue is a table: one case per row reads best)
"""The hostile-input catalogue: every case through its front doors (API, CLI, magics).

Each case is one row of :data:`CATALOGUE`. For every front door it names, the test
asserts that the failure is one line with no traceback (a ``PublishError`` subclass
from the API, a non-zero exit and one stderr line from the CLI, a one-line
``UsageError`` from the magics), that nothing was written where it should not be (no
new job row unless the failure came after the job started — then ``failed`` with a
one-line error; no file in the store, at the fetch target or in staging), and that no
secret of the case appears anywhere (message, stdout/stderr, display outputs, what a
fake server received, every byte under the home folder and the workspace including the
SQLite ledger) in any encoding (see ``hostile.py``).

Cases marked ``xfail(strict=True)`` fail today because of an issue-9 item another
change fixes: drop the marker after that fix is merged.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import sqlite3
import subprocess
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hostile import all_forms, assert_one_line, find_secrets, tree

import jupyter_publish as jp
from jupyter_publish.errors import (
    BackendError,
    CredentialsError,
    DestinationError,
    NotFoundError,
    PublishError,
    SourceError,
    UnsafeArchiveError,
)

USER = "alice"
PASSWORD = "Pw+/" + secrets.token_hex(8) + "&="
"""Basic-auth password with characters that URL- and base64-encode differently."""
TOKEN = "tok-" + secrets.token_urlsafe(16)
"""A bearer token passed in a header."""
PASSWORD_IN_URL = urllib.parse.quote(PASSWORD, safe="")
"""The password as it must be written in a URL's userinfo."""
SLASHED = "pw/" + secrets.token_hex(8)
"""A password with a ``/`` the user forgot to percent-encode in a URL."""
SECRET = "sk-" + secrets.token_hex(12)
"""Any other secret a user might paste into an option."""
DOORS = ("api", "cli", "magic")
LEDGER_FILES = ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "ledger.sqlite-journal")


# -- fake servers: only for misbehaviour a real server will not show -------------------


class _Fake(ThreadingHTTPServer):
    daemon_threads = True
    mode = "echo"
    other = ""  # the lying server's "download URL" origin
    captured: list[str]


SHARED_STORE: dict[str, bytes] = {}
"""What the lying drop received, served back by the other origin it names (a CDN, say)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Fake

    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass

    def _drain(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        if length:
            return self.rfile.read(length)
        body = bytearray()
        if "chunked" in self.headers.get("transfer-encoding", ""):
            while True:
                size = int(self.rfile.readline().split(b";")[0] or b"0", 16)
                body += self.rfile.read(size + 2)[:size]
                if not size:
                    break
        return bytes(body)

    def _answer(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        self.server.captured.append(f"{self.command} {self.path}\n{self.headers}")
        body = self._drain()
        mode = self.server.mode
        if mode == "echo":  # an error page that repeats the request, credentials and all
            sent = {name: self.headers[name] for name in ("Authorization", "X-Token") if name in self.headers}
            self._answer(500, f"denied {sent!r} for {self.path}".encode())
        elif mode == "null":  # 201 for every upload, stores nothing
            self._answer(404 if self.command in ("GET", "HEAD") else 201)
        elif mode == "liar":  # says the download is on another origin (and puts it there)
            if self.command in ("PUT", "POST"):
                SHARED_STORE[self.path] = body
                self._answer(201, f"{self.server.other}{self.path}\n".encode())
            else:
                self._answer(404)
        elif self.command == "HEAD" and self.path in SHARED_STORE:
            # "other", the origin the liar names: it confirms the upload's length to the
            # read-back, then refuses the download, so the fetch fails after it asked there.
            self._answer(200, SHARED_STORE[self.path])
        else:
            self._answer(404)

    do_GET = do_HEAD = do_PUT = do_POST = _handle


def _fake(mode: str) -> _Fake:
    server = _Fake(("127.0.0.1", 0), _Handler)
    server.mode, server.captured = mode, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _url(server: _Fake) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, _Fake]]:
    servers = {mode: _fake(mode) for mode in ("echo", "null", "liar", "other")}
    servers["liar"].other = _url(servers["other"]).replace("127.0.0.1", "localhost")
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


# -- hostile archives, served by the real nginx ----------------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _hostile_archives() -> dict[str, bytes]:
    deep = "/".join(["d"] * 3000) + "/x.txt"
    return {
        "traversal.tar.gz": _tar([(_info("ok.txt"), b"ok"), (_info("../../escaped.txt"), b"evil")]),
        "absolute.tar.gz": _tar([(_info("/tmp/jp-absolute-escape.txt"), b"evil")]),
        "symlink.tar.gz": _tar(
            [(_info("link", tarfile.SYMTYPE, linkname="/etc"), None), (_info("link/jp-evil"), b"evil")]
        ),
        "hardlink.tar.gz": _tar([(_info("passwd", tarfile.LNKTYPE, linkname="/etc/passwd"), None)]),
        "device.tar.gz": _tar([(_info("null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)]),
        "fifo.tar.gz": _tar([(_info("pipe", tarfile.FIFOTYPE), None)]),
        "deep.tar.gz": _tar([(_info(deep), b"deep")]),
        "zipslip.zip": _zip({"ok.txt": b"ok", "../../zip-escaped.txt": b"evil"}),
        "zipabs.zip": _zip({"/tmp/jp-zip-absolute.txt": b"evil"}),
        "notgzip.tar.gz": b"\x1f\x8b\x08\x00" + os.urandom(64),
    }


@pytest.fixture(scope="session")
def hostile_base(nginx_dav: Any) -> str:
    """The URL folder on nginx that holds every hostile archive (put once a session)."""
    import httpx

    base = f"{nginx_dav.base_url}/hostile-{secrets.token_hex(4)}/"
    with httpx.Client() as client:
        for name, data in _hostile_archives().items():
            client.put(base + name, content=data).raise_for_status()
    return base


# -- the workspace each case runs in ---------------------------------------------------


@dataclass
class Ctx:
    root: Path
    home: Path
    tokens: dict[str, str] = field(default_factory=dict)
    captured: list[Callable[[], str]] = field(default_factory=list)
    """Callables giving what fake servers received: searched for secrets too."""

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def sub(self, text: str) -> str:
        for token, value in self.tokens.items():
            text = text.replace(token, value)
        return text


def _needs(ctx: Ctx, request: pytest.FixtureRequest, needs: tuple[str, ...]) -> None:
    """Start (or reuse) what the case needs and record its tokens."""
    if {"echo", "null", "liar"} & set(needs):
        fakes = request.getfixturevalue("fakes")
        for mode, server in fakes.items():
            ctx.tokens[f"@{mode.upper()}@"] = _url(server)
            ctx.tokens[f"@{mode.upper()}HOST@"] = _url(server).removeprefix("http://")
        # The configured origins may receive the credentials; the one a liar names may not.
        other, mark = fakes["other"], len(fakes["other"].captured)
        ctx.captured.append(lambda: "\n".join(other.captured[mark:]))
    if "liar" in needs:
        with _env({"JUPYTER_PUBLISH_HTTP_AUTH": f"{USER}:{PASSWORD}"}):
            result = jp.publish(
                ctx.src, _url(request.getfixturevalue("fakes")["liar"]) + "/drop/", quiet=True
            )
        ctx.tokens["@LIAR_JOB@"] = result.job_id
    if "dav" in needs:
        ctx.tokens["@DAV@"] = request.getfixturevalue("nginx_dav").base_url
    if "archives" in needs:
        ctx.tokens["@ARCH@"] = request.getfixturevalue("hostile_base")
    if "s3" in needs:
        server = request.getfixturevalue("s3_env")
        ctx.tokens["@BUCKET@"] = request.getfixturevalue("s3_bucket")
        ctx.tokens["@S3SECRET@"] = server.secret_key
    if "job" in needs or "jobs2" in needs:
        ctx.tokens["@JOB@"] = jp.publish(ctx.src, quiet=True).job_id
    if "jobs2" in needs:
        first, second = ctx.tokens["@JOB@"], jp.publish(ctx.src, quiet=True).job_id
        common = os.path.commonprefix([first, second])  # noqa: RUF071 - a string prefix is meant
        assert len(common) >= 6, (first, second)
        ctx.tokens["@PREFIX@"] = common


class _env:
    """Set environment variables for a block (the API door; the CLI gets them directly)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values, self.saved = dict(values), {}

    def __enter__(self) -> None:
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value

    def __exit__(self, *exc: Any) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the catalogue ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile input and what each front door must make of it."""

    id: str
    api: Callable[[Ctx], Any] | None = None
    cli: tuple[str, ...] | None = None
    magic: str | None = None
    """A line (``%publish …``) or a cell (``%%publish …\\nbody``); ``{{jp_auth}}`` is USER:PASSWORD."""
    error: type[PublishError] = PublishError
    """What the API raises (a PublishError subclass)."""
    code: int | None = None
    """The CLI's exit code (None: any non-zero)."""
    fragment: str = ""
    """Lower-case text the one-line message must contain, at every door."""
    jobs: str = "none"
    """``none``: no new job row; ``failed``: new rows allowed, each ``failed`` with a one-line error."""
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    needs: tuple[str, ...] = ()
    partial_ok: bool = False
    """A fetch that failed on the network may keep its ``.NAME.jp-partial`` staging to resume."""
    keeps: str = ""
    """A folder of the workspace a failure keeps on purpose (a failed cell's outputs, to debug)."""
    xfail: str | Mapping[str, str] = ""
    """Why this fails today (an issue-9 item): for every door, or per door."""


def _pub(*args: Any, **kwargs: Any) -> Callable[[Ctx], Any]:
    """``jp.publish`` with ``@TOKENS@`` in string arguments replaced."""

    def call(ctx: Ctx) -> Any:
        fixed = [ctx.sub(a) if isinstance(a, str) else a for a in args]
        opts = {k: ctx.sub(v) if isinstance(v, str) else v for k, v in kwargs.items()}
        return jp.publish(*fixed, quiet=True, **opts)

    return call


def _fetch(ref: Any, dest: str | None = "@OUT@", **kwargs: Any) -> Callable[[Ctx], Any]:
    def call(ctx: Ctx) -> Any:
        target = ctx.sub(dest) if dest else None
        return jp.fetch(ctx.sub(ref) if isinstance(ref, str) else ref, target, quiet=True, **kwargs)

    return call


S = "@SRC@"
AUTH_ENV = {"JUPYTER_PUBLISH_HTTP_AUTH": f"{USER}:{PASSWORD}"}
HEADER_ENV = {"JUPYTER_PUBLISH_HTTP_HEADERS": f"Authorization: Bearer {TOKEN}"}

CATALOGUE: list[Case] = [
    # -- malformed destinations ------------------------------------------------------
    Case("dest-bad-scheme", _pub(S, "ftp://host/x"), ("publish", S, "--to", "ftp://host/x"),
         f"%publish {S} --to ftp://host/x", DestinationError, 2, "unknown destination"),
    Case("dest-gopher", _pub(S, "gopher://h"), ("publish", S, "--to", "gopher://h"), None,
         DestinationError, 2, "unknown destination"),
    Case("dest-empty", _pub(S, ""), ("publish", S, "--to", ""), None, DestinationError, 2, "empty destination"),
    Case("dest-unknown-placeholder", _pub(S, "s3://bkt/{nope}"), ("publish", S, "--to", "s3://bkt/{nope}"),
         f"%publish {S} --to s3://bkt/{{nope}}", DestinationError, 2, "unknown placeholder"),
    Case("dest-placeholder-conversion", _pub(S, "s3://bkt/{jobID!r}"), None, None, DestinationError,
         fragment="unknown placeholder"),
    Case("dest-placeholder-attribute", _pub(S, "s3://bkt/{jobID.__class__}"),
         ("publish", S, "--to", "s3://bkt/{jobID.__class__}"), None, DestinationError, 2),
    Case("dest-unbalanced-brace", _pub(S, "s3://bkt/{jobID"), ("publish", S, "--to", "s3://bkt/{jobID"),
         f"%publish {S} --to s3://bkt/{{jobID", DestinationError, 2, "placeholder"),
    Case("dest-no-bucket", _pub(S, "s3://"), ("publish", S, "--to", "s3://"), None, DestinationError, 2,
         "no bucket"),
    Case("dest-bad-bucket", _pub(S, "s3://UPPER_case/k"), ("publish", S, "--to", "s3://UPPER_case/k"), None,
         DestinationError, 2, "invalid bucket"),
    Case("dest-nul-byte", _pub(S, "local\x00"), None, None, DestinationError, fragment="unknown destination"),
    Case("dest-control-chars", _pub(S, "s3://b\x1b[31mred/k"), ("publish", S, "--to", "s3://b\x1b[31mred/k"),
         None, DestinationError, 2, "invalid bucket"),
    Case("dest-fullwidth-scheme", _pub(S, "ｓ３://bucket/k"), ("publish", S, "--to", "ｓ３://bucket/k"), None,
         DestinationError, 2, "unknown destination"),
    Case("dest-absurdly-long", _pub(S, "ftp://" + "a" * 100_000), ("publish", S, "--to", "s3://" + "b" * 5000),
         None, DestinationError, 2),
    Case("dest-bad-port", _pub(S, "http://127.0.0.1:99999/x/"), ("publish", S, "--to", "http://127.0.0.1:99999/"),
         f"%publish {S} --to http://127.0.0.1:99999/", DestinationError, 2, "malformed url"),
    Case("dest-no-host", _pub(S, "http:///path/"), ("publish", S, "--to", "http:///path/"), None,
         DestinationError, 2, "no host"),
    Case("dest-ipfs-with-cid", _pub(S, "ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"), None, None,
         DestinationError, fragment="computed"),
    Case("dest-bad-inline-option", _pub(S, "s3://bkt/k,opt=broken"), ("publish", S, "--to", "s3://bkt/k,opt=x"),
         None, DestinationError, 2, "malformed option"),
    Case("dest-option-for-other-backend", _pub(S, "local", endpoint="http://127.0.0.1:1"),
         ("publish", S, "--endpoint", "http://127.0.0.1:1"), f"%publish {S} --to local --endpoint http://x",
         DestinationError, 2, "does not apply"),
    Case("dest-endpoint-not-url", _pub(S, "s3://bkt/k", endpoint="notaurl"),
         ("publish", S, "--to", "s3://bkt/k", "--endpoint", "notaurl"), None, DestinationError, 2, "not a url",
         jobs="failed"),
    Case("dest-url-credentials", _pub(S, f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1/drop/"),
         ("publish", S, "--to", f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1/drop/"),
         f"%publish {S} --to http://{USER}:{{{{jp_password}}}}@127.0.0.1:1/drop/", DestinationError, 2,
         "credentials", secrets=(PASSWORD,), pairs=((USER, PASSWORD),)),
    Case("dest-query-token", _pub(S, f"http://127.0.0.1:1/drop/?token={SECRET}"),
         ("publish", S, "--to", f"http://127.0.0.1:1/drop/?token={SECRET}"), None, DestinationError, 2,
         "query", secrets=(SECRET,)),
    Case("dest-url-slashed-password", _pub(S, f"http://{USER}:{SLASHED}@127.0.0.1:1/drop/"),
         ("publish", S, "--to", f"http://{USER}:{SLASHED}@127.0.0.1:1/drop/"),
         f"%publish {S} --to http://{USER}:{SLASHED}@127.0.0.1:1/drop/", DestinationError, 2,
         secrets=(SLASHED,)),
    Case("dest-endpoint-credentials", _pub(S, "s3://bkt/k", endpoint=f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1"),
         ("publish", S, "--to", "s3://bkt/k", "--endpoint", f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1"), None,
         PublishError, secrets=(PASSWORD,), pairs=((USER, PASSWORD),), jobs="failed"),
    Case("dest-unreachable-port", _pub(S, "http://127.0.0.1:1/drop/"), ("publish", S, "--to", "http://127.0.0.1:1/d/"),
         None, BackendError, 1, "cannot reach", jobs="failed"),
    Case("dest-s3-key-too-long", _pub(S, "s3://@BUCKET@/" + "k" * 2000), None, None, PublishError,
         needs=("s3",), jobs="failed"),
    # -- bad option values ------------------------------------------------------------
    Case("opt-negative-jobs", _pub(S, max_concurrency=-1), ("publish", S, "--jobs", "-1"),
         f"%publish {S} --jobs -1", DestinationError, 2, "max_concurrency"),
    Case("opt-huge-jobs", _pub(S, max_concurrency=10**12), ("publish", S, "-j", str(10**12)),
         f"%publish {S} --jobs 1000000000000", DestinationError, 2),
    Case("opt-float-jobs", _pub(S, max_concurrency=2.5), ("publish", S, "--jobs", "2.5"),
         f"%publish {S} --jobs 2.5", DestinationError, 2),
    Case("opt-bool-jobs", _pub(S, max_concurrency=True), None, None, DestinationError, fragment="whole number"),
    Case("opt-str-jobs", _pub(S, max_concurrency="many"), ("fetch", "@JOB@", "--jobs", "many"),
         None, DestinationError, 2, needs=("job",)),
    Case("opt-bad-compression", _pub(S, compression="rar"), ("publish", S, "--compression", "rar"),
         f"%publish {S} --compression rar", DestinationError, 2),
    Case("opt-bad-cid-version", _pub(S, cid_version=7), ("publish", S, "--cid-version", "7"),
         f"%publish {S} --cid-version 7", DestinationError, 2),
    Case("opt-unknown-backend-option", _pub(S, "s3://bkt/k", bucket_policy="public"), None, None,
         DestinationError, fragment="does not apply"),
    Case("opt-bad-http-method", _pub(S, "http://127.0.0.1:1/d/", method="DELETE"),
         ("publish", S, "--to", "http://127.0.0.1:1/d/", "--method", "DELETE"),
         f"%publish {S} --to http://127.0.0.1:1/d/ --method DELETE", DestinationError, 2, "method",
         jobs="failed"),
    Case("opt-bad-presign", _pub(S, "s3://@BUCKET@/k/", presign="forever"), None, None, PublishError,
         needs=("s3",), jobs="failed"),
    Case("env-jobs-word", _pub(S), ("publish", S), f"%publish {S}", DestinationError, 2,
         "jupyter_publish_jobs", env={"JUPYTER_PUBLISH_JOBS": "lots"}),
    Case("env-jobs-zero", _pub(S), ("publish", S), None, DestinationError, 2, "jupyter_publish_jobs",
         env={"JUPYTER_PUBLISH_JOBS": "0"}),
    Case("env-jobs-bool", _pub(S), ("fetch", "@JOB@"), None, DestinationError, 2, "jupyter_publish_jobs",
         env={"JUPYTER_PUBLISH_JOBS": "true"}, needs=("job",)),
    Case("env-idle-timeout-nan", _pub(S, "@DAV@/idle/"), ("publish", S, "--to", "@DAV@/idle/"), None,
         DestinationError, 2, "idle_timeout", env={"JUPYTER_PUBLISH_IDLE_TIMEOUT": "nan"}, needs=("dav",),
         jobs="failed"),
    Case("env-retries-negative", _pub(S, "@DAV@/retry/"), ("publish", S, "--to", "@DAV@/retry/"), None,
         DestinationError, 2, "retries", env={"JUPYTER_PUBLISH_RETRIES": "-3"}, needs=("dav",),
         jobs="failed"),
    Case("env-bad-auth", _pub(S, "@DAV@/auth/"), ("publish", S, "--to", "@DAV@/auth/"), None, PublishError, 2,
         env={"JUPYTER_PUBLISH_HTTP_AUTH": SECRET}, secrets=(SECRET,), needs=("dav",), jobs="failed"),
    Case("env-bad-headers", _pub(S, "@DAV@/hdr/"), ("publish", S, "--to", "@DAV@/hdr/"), None, PublishError, 2,
         env={"JUPYTER_PUBLISH_HTTP_HEADERS": f"no colon {SECRET}"}, secrets=(SECRET,), needs=("dav",),
         jobs="failed"),
    Case("env-home-is-file", lambda ctx: jp.jobs(), ("jobs",), "%jobs", SourceError, 1, "jupyter_publish_home",
         env={"JUPYTER_PUBLISH_HOME": "@SRC@/a.txt/home"}),
    # -- missing, odd or unreadable sources ---------------------------------------------
    Case("src-missing", _pub("@TMP@/missing"), ("publish", "@TMP@/missing"), "%publish @TMP@/missing.txt",
         SourceError, 1, "no such", jobs="failed"),
    Case("src-empty-glob", _pub("@TMP@/*.nothing"), ("publish", "@TMP@/*.nothing"), "%publish @TMP@/*.nothing",
         SourceError, 1, jobs="failed"),
    Case("src-empty-list", _pub([]), None, "%publish", PublishError, jobs="failed"),
    Case("src-fifo", _pub("@TMP@/fifo"), ("publish", "@TMP@/fifo"), "%publish @TMP@/fifo", SourceError, 1,
         "not a regular file", jobs="failed"),
    Case("src-nul-in-path", _pub("@SRC@/a\x00.txt"), None, None, SourceError, jobs="failed"),
    Case("src-symlink-outside", _pub("@TMP@/linked"), ("publish", "@TMP@/linked"), "%publish @TMP@/linked",
         SourceError, 1, jobs="failed"),
    # -- fetch references ---------------------------------------------------------------
    Case("ref-unknown-job", _fetch("j-doesnotexist"), ("fetch", "j-doesnotexist", "--to", "@OUT@"),
         "%fetch j-doesnotexist --to @OUT@", NotFoundError, 1, "no job"),
    Case("ref-ambiguous-prefix", _fetch("@PREFIX@"), ("fetch", "@PREFIX@", "--to", "@OUT@"),
         "%fetch @PREFIX@ --to @OUT@", NotFoundError, 1, "ambiguous", needs=("jobs2",)),
    Case("ref-underscore-wildcard", _fetch("j-____"), ("fetch", "j-____", "--to", "@OUT@"),
         "%fetch j-____ --to @OUT@", NotFoundError, 1, needs=("job",)),
    Case("ref-percent-wildcard", _fetch("j-%%%%"), ("fetch", "j-%%%%", "--to", "@OUT@"), None, NotFoundError, 1,
         needs=("job",)),
    Case("ref-dotdot-job", _fetch("../../etc"), ("fetch", "../../etc", "--to", "@OUT@"),
         "%fetch ../../etc --to @OUT@", NotFoundError, 1),
    Case("ref-local-traversal", _fetch("local://@JOB@/../../ledger.sqlite"),
         ("fetch", "local://@JOB@/../../ledger.sqlite", "--to", "@OUT@"), None, PublishError, needs=("job",)),
    Case("ref-local-no-job", _fetch("local://"), ("fetch", "local://", "--to", "@OUT@"), None, DestinationError, 2),
    Case("ref-empty", _fetch(""), ("fetch", "", "--to", "@OUT@"), "%fetch", DestinationError, 2),
    Case("ref-not-a-string", _fetch(12345), None, None, DestinationError),
    Case("ref-unknown-scheme", _fetch("ftp://host/file"), ("fetch", "ftp://host/file", "--to", "@OUT@"),
         "%fetch ftp://host/file --to @OUT@", DestinationError, 2),
    Case("ref-malformed-cid", _fetch("ipfs://not-a-cid"), ("fetch", "ipfs://not-a-cid", "--to", "@OUT@"),
         "%fetch ipfs://not-a-cid --to @OUT@", PublishError),
    Case("ref-empty-cid", _fetch("ipfs://"), ("fetch", "ipfs://", "--to", "@OUT@"), None, PublishError),
    Case("ref-s3-no-bucket", _fetch("s3://"), ("fetch", "s3://", "--to", "@OUT@"), None, DestinationError, 2),
    Case("ref-s3-missing-key", _fetch("s3://@BUCKET@/no/such/key"), None, None, NotFoundError, needs=("s3",)),
    Case("ref-unreachable-url", _fetch("http://127.0.0.1:1/x"), ("fetch", "http://127.0.0.1:1/x", "--to", "@OUT@"),
         "%fetch http://127.0.0.1:1/x --to @OUT@", BackendError, 1),
    Case("ref-into-a-file", _fetch("@JOB@", "@SRC@/a.txt"), ("fetch", "@JOB@", "--to", "@SRC@/a.txt"),
         "%fetch @JOB@ --to @SRC@/a.txt", DestinationError, 2, "is a file", needs=("job",)),
    Case("ref-url-credentials-unreachable", _fetch(f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1/x"),
         ("fetch", f"http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1/x", "--to", "@OUT@"),
         f"%fetch http://{USER}:{PASSWORD_IN_URL}@127.0.0.1:1/x --to @OUT@", BackendError, 1,
         secrets=(PASSWORD,), pairs=((USER, PASSWORD),)),
    Case("ref-url-slashed-password", _fetch(f"http://{USER}:{SLASHED}@127.0.0.1:1/x"),
         ("fetch", f"http://{USER}:{SLASHED}@127.0.0.1:1/x", "--to", "@OUT@"), None, DestinationError, 2,
         secrets=(SLASHED,)),
    Case("ref-url-credentials-echoed", _fetch(f"http://{USER}:{PASSWORD_IN_URL}@@ECHOHOST@/x"),
         ("fetch", f"http://{USER}:{PASSWORD_IN_URL}@@ECHOHOST@/x", "--to", "@OUT@", "-q"), None, BackendError, 1,
         secrets=(PASSWORD,), pairs=((USER, PASSWORD),), needs=("echo",), partial_ok=True),
    Case("cli-progress-before-error", cli=("fetch", "@ECHO@/x", "--to", "@OUT@"), code=1, needs=("echo",),
         partial_ok=True),
    Case("ref-fetch-jobs-zero", _fetch("@JOB@", max_concurrency=0), ("fetch", "@JOB@", "--jobs", "0"),
         "%fetch @JOB@ --jobs 0", DestinationError, 2, needs=("job",)),
    Case("ref-failed-job", _fetch("@FAILED@"), ("fetch", "@FAILED@", "--to", "@OUT@"), None, NotFoundError, 1,
         "status failed", needs=("failed",)),
    # -- secrets passed as options, echoed back by a server ---------------------------------
    Case("secret-auth-echoed", _pub(S, "@ECHO@/drop/", auth=(USER, PASSWORD)),
         None, f"%publish {S} --to @ECHO@/drop/ --auth {{{{jp_auth}}}}",
         BackendError, 1, env={}, secrets=(PASSWORD,), pairs=((USER, PASSWORD),), needs=("echo",),
         jobs="failed"),
    Case("secret-auth-env-echoed", _pub(S, "@ECHO@/drop/"), ("publish", S, "--to", "@ECHO@/drop/"), None,
         BackendError, 1, env=AUTH_ENV, secrets=(PASSWORD,), pairs=((USER, PASSWORD),), needs=("echo",),
         jobs="failed"),
    Case("secret-header-echoed", _pub(S, "@ECHO@/drop/"), ("publish", S, "--to", "@ECHO@/drop/"), None,
         BackendError, 1, env=HEADER_ENV, secrets=(TOKEN,), needs=("echo",), jobs="failed"),
    Case("secret-fetch-auth-echoed", _fetch("@ECHO@/x", auth=(USER, PASSWORD)), ("fetch", "@ECHO@/x", "--to", "@OUT@", "-q"),
         "%fetch @ECHO@/x --to @OUT@ --auth {{jp_auth}}", BackendError, 1, env=AUTH_ENV,
         secrets=(PASSWORD,), pairs=((USER, PASSWORD),), needs=("echo",), partial_ok=True),
    Case("secret-lying-download-origin", _fetch("@LIAR_JOB@"), ("fetch", "@LIAR_JOB@", "--to", "@OUT@", "-q"),
         "%fetch @LIAR_JOB@ --to @OUT@", NotFoundError, 1, env=AUTH_ENV, secrets=(PASSWORD,),
         pairs=((USER, PASSWORD),), needs=("liar",), partial_ok=True),
    Case("secret-s3-wrong-secret", _pub(S, "s3://@BUCKET@/k/", aws_access_key_id="JPNOSUCHKEY",
                                        aws_secret_access_key=SECRET),
         ("publish", S, "--to", "s3://@BUCKET@/k/"), None, CredentialsError, 1,
         env={"AWS_ACCESS_KEY_ID": "JPNOSUCHKEY", "AWS_SECRET_ACCESS_KEY": SECRET}, secrets=(SECRET,),
         needs=("s3",), jobs="failed"),
    Case("secret-null-store", _pub(S, "@NULL@/drop/", auth=(USER, PASSWORD)),
         ("publish", S, "--to", "@NULL@/drop/"), None, PublishError, 1, env=AUTH_ENV, secrets=(PASSWORD,),
         pairs=((USER, PASSWORD),), needs=("null",), jobs="failed"),
    Case("secret-cli-stray-option", None, ("fetch", "@JOB@", "--auth", f"{USER}:{PASSWORD}"), None,
         code=2, secrets=(PASSWORD,), pairs=((USER, PASSWORD),), needs=("job",)),
    Case("secret-magic-stray-value", None, None, f"%publish {S} --auth {USER}:{PASSWORD} --bogus {SECRET}",
         secrets=(PASSWORD, SECRET), fragment="unknown option --bogus"),
    # -- hostile documents ---------------------------------------------------------------
    Case("json-deep-nesting", lambda ctx: jp.cids_from_bacalhau("[" * 100_000 + "]" * 100_000), None, None,
         PublishError),
    Case("json-describe-params-string", lambda ctx: jp.cids_from_bacalhau(
        {"Executions": {"Items": [{"PublishedResult": {"Type": "ipfs", "Params": "QmT78zSuBmuS4z925WZfrqQ1"}}]}}),
         None, None, PublishError),
    Case("json-describe-params-list", lambda ctx: jp.cids_from_bacalhau(
        {"Executions": {"Items": [{"PublishedResult": {"Type": "s3", "Params": ["bucket", "key"]}}]}}),
         None, None, PublishError),
    Case("json-params-string", _fetch({"Type": "ipfs", "Params": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"}),
         None, None, PublishError),
    Case("json-params-list", _fetch({"Type": "s3", "Params": ["bucket", "key"]}), None, None, PublishError),
    Case("json-not-json", lambda ctx: jp.cids_from_bacalhau("{not json at all"), None, None, PublishError),
    Case("json-s3-manifest-wrong-type", _fetch("s3://@BUCKET@/hostile/"), None, None, PublishError,
         needs=("s3", "manifest")),
    # -- hostile archives ------------------------------------------------------------------
    *[
        Case(f"archive-{name.split('.')[0]}", _fetch(f"@ARCH@{name}"), ("fetch", f"@ARCH@{name}", "--to", "@OUT@"),
             f"%fetch @ARCH@{name} --to @OUT@" if name in ("traversal.tar.gz", "zipslip.zip") else None,
             UnsafeArchiveError if name != "notgzip.tar.gz" else PublishError, 1, needs=("archives",),
             xfail="")
        for name in _hostile_archives()
    ],
    # -- magic-line abuse ----------------------------------------------------------------
    Case("magic-unbalanced-quotes", magic='%publish "unterminated --to local', fragment="unbalanced quotes"),
    Case("magic-unknown-flag", magic=f"%publish {S} --frobnicate", fragment="unknown option --frobnicate"),
    Case("magic-out-not-identifier", magic=f"%publish {S} --out 1abc", fragment="variable name"),
    Case("magic-out-keyword", magic="%%publish --out class\nprint(1)", fragment="variable name"),
    Case("magic-undefined-variable", magic=f"%publish {S} --to {{{{nowhere_defined}}}}", fragment="no variable"),
    Case("magic-missing-attribute", magic="%fetch {{jp_auth.nope}}", fragment="no attribute"),
    Case(
        "magic-cell-raises",
        magic="%%publish\nraise ValueError('boom')",
        fragment="cell failed",
        jobs="failed",
        keeps="work/jupyter-publish-outputs",  # the outputs and the traceback, where the browser opens them
    ),
    Case("magic-cell-empty", magic="%%publish\npass", fragment="nothing to publish"),
    Case("magic-cell-bad-dest", magic="%%publish ftp://x\nprint(1)", fragment="unknown destination"),
    Case("magic-sync-negative", magic="%%publish --sync-every -1 --no-archive\nprint(1)", fragment="positive"),
    Case("magic-two-destinations", magic="%%publish local s3://b/k\nprint(1)", fragment="one destination"),
    Case("magic-line-only-option", magic=f"%publish {S} --optional", fragment="cell magic"),
    Case("magic-undefined-name-source", magic="%publish not_a_variable_here", fragment="cannot publish"),
    Case("magic-jobs-bad-limit", magic="%jobs --limit many"),
    Case("magic-cids-cell-with-job", magic="%%cids j-x\nQmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
         fragment="takes no job"),
    Case("cli-no-command", cli=(), code=2),
    Case("cli-unknown-command", cli=("frobnicate",), code=2),
    Case("cli-cid-missing", cli=("cid", "@TMP@/missing"), code=1),
    Case("cli-jobs-bad-limit", cli=("jobs", "--limit", "x"), code=2),
]  # fmt: skip


_SERVER_NEEDS = {"dav", "archives", "s3", "manifest"}
"""Needs that start nginx or SeaweedFS (``fakes`` are in-process, fast)."""


def _doors(case: Case) -> Iterator[tuple[str, Any]]:
    for door in DOORS:
        if getattr(case, door) is None:
            continue
        reason = case.xfail if isinstance(case.xfail, str) else case.xfail.get(door, "")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        if _SERVER_NEEDS & set(case.needs):  # fixtures asked for by name in _needs
            marks.append(pytest.mark.servers)
        yield door, pytest.param(case, door, id=f"{door}-{case.id}", marks=marks)


PARAMS = [param for case in CATALOGUE for _door, param in _doors(case)]


def test_catalogue_is_large_and_unique() -> None:
    ids = [case.id for case in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert len(CATALOGUE) >= 60
    doors = {door: sum(1 for c in CATALOGUE if getattr(c, door) is not None) for door in DOORS}
    assert all(count >= 20 for count in doors.values()), doors


# -- running one case through one door ---------------------------------------------------


@pytest.fixture(scope="module")
def shell(ip: Any) -> Any:
    return ip


def _run_api(case: Case, ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert case.api is not None
    with _env({k: ctx.sub(v) for k, v in case.env.items()}):
        try:
            case.api(ctx)
        except PublishError as exc:
            message = str(exc)
            assert isinstance(exc, case.error), f"{type(exc).__name__} is not a {case.error.__name__}: {exc}"
        except Exception as exc:
            pytest.fail(f"raised {type(exc).__name__}, not a PublishError: {str(exc)[:300]}")
        else:
            pytest.fail("no error raised")
    out = capsys.readouterr()
    return {"message": assert_one_line(message), "stdout": out.out, "stderr": out.err}


def _run_cli(case: Case, ctx: Ctx) -> dict[str, str]:
    assert case.cli is not None
    env = {**os.environ, **{k: ctx.sub(v) for k, v in case.env.items()}}
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *(ctx.sub(a) for a in case.cli)],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=env,
        cwd=ctx.root / "work",
        timeout=60,
    )
    assert proc.returncode != 0, f"exit 0: {proc.stdout[-500:]}"
    if case.code is not None:
        assert proc.returncode == case.code, proc.stderr
    message = assert_one_line(proc.stderr, "stderr")
    return {"message": message, "stdout": proc.stdout, "stderr": proc.stderr}


def _run_magic(case: Case, ctx: Ctx, shell: Any) -> dict[str, str]:
    from IPython.core.error import UsageError
    from IPython.utils.capture import capture_output

    assert case.magic is not None
    shell.user_ns.update(jp_auth=f"{USER}:{PASSWORD}", jp_password=PASSWORD_IN_URL)
    with _env({k: ctx.sub(v) for k, v in case.env.items()}), capture_output() as captured:
        result = shell.run_cell(ctx.sub(case.magic))
    error = result.error_before_exec or result.error_in_exec
    shown = "\n".join(repr(o.data) for o in captured.outputs)
    assert type(error) is UsageError, f"{error!r}\nstdout: {captured.stdout}\nstderr: {captured.stderr}"
    assert "Traceback" not in captured.stdout + captured.stderr, captured.stderr
    message = assert_one_line(str(error))
    assert f"UsageError: {message}" in captured.stderr
    return {"message": message, "stdout": captured.stdout, "stderr": captured.stderr, "outputs": shown}


def _rows(home: Path) -> dict[str, tuple[str, str | None]]:
    path = home / "ledger.sqlite"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        return {
            job: (status, error)
            for job, status, error in db.execute("SELECT job_id, status, error FROM jobs")
        }


def _prepare(ctx: Ctx, request: pytest.FixtureRequest, case: Case) -> None:
    (ctx.root / "work").mkdir()
    ctx.src.mkdir()
    (ctx.src / "a.txt").write_text("alpha\n")
    (ctx.src / "sub").mkdir()
    (ctx.src / "sub" / "b.csv").write_text("x,y\n1,2\n")
    os.mkfifo(ctx.root / "fifo")
    (ctx.root / "linked").mkdir()
    (ctx.root / "linked" / "inside.txt").write_text("in\n")
    (ctx.root / "outside").mkdir()
    (ctx.root / "outside" / "private.txt").write_text("outside the published folder\n")
    (ctx.root / "linked" / "escape").symlink_to(ctx.root / "outside")
    ctx.tokens.update({"@SRC@": str(ctx.src), "@TMP@": str(ctx.root), "@OUT@": str(ctx.out)})
    _needs(ctx, request, case.needs)
    if "failed" in case.needs:
        with contextlib.suppress(SourceError):
            jp.publish(ctx.root / "missing", quiet=True)
        ctx.tokens["@FAILED@"] = next(iter(_rows(ctx.home)))
    if "manifest" in case.needs:
        client = request.getfixturevalue("s3_server").client()
        bucket = ctx.tokens["@BUCKET@"]
        client.put_object(Bucket=bucket, Key="hostile/data.txt", Body=b"data")
        client.put_object(Bucket=bucket, Key="hostile/.jupyter-publish.json", Body=b'{"manifest": "oops"}')


@pytest.mark.parametrize(("case", "door"), PARAMS)
def test_hostile_input(
    case: Case,
    door: str,
    tmp_path: Path,
    isolated_home: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = Ctx(tmp_path, isolated_home)
    _prepare(ctx, request, case)
    monkeypatch.chdir(ctx.root / "work")
    before_rows, before_files, before_home = _rows(ctx.home), tree(ctx.root), tree(ctx.home)
    shell = request.getfixturevalue("shell") if door == "magic" else None
    capsys.readouterr()

    if door == "api":
        seen = _run_api(case, ctx, capsys)
    elif door == "cli":
        seen = _run_cli(case, ctx)
    else:
        seen = _run_magic(case, ctx, shell)

    if case.fragment:
        assert case.fragment in seen["message"].lower(), seen["message"]
    _check_nothing_written(case, ctx, before_rows, before_files, before_home)
    forms = all_forms(case.secrets, case.pairs)
    if forms:
        texts = {**seen, **{f"server{i}": get() for i, get in enumerate(ctx.captured)}}
        hits = find_secrets(forms, texts, [ctx.home, ctx.root])
        assert not hits, hits


def _check_nothing_written(
    case: Case, ctx: Ctx, before_rows: dict[str, Any], before_files: set[str], before_home: set[str]
) -> None:
    rows = _rows(ctx.home)
    new_rows = {job: rows[job] for job in set(rows) - set(before_rows)}
    if case.jobs == "none":
        assert not new_rows, new_rows
    for job, (status, error) in new_rows.items():
        assert status == "failed", (job, status)
        assert_one_line(error or "", f"ledger error of {job}")
    new_files = sorted(tree(ctx.root) - before_files)
    assert not ctx.out.exists(), "the fetch target exists after a failure"
    new_home = [
        path
        for path in sorted(tree(ctx.home) - before_home)
        if path not in LEDGER_FILES and not (ctx.home / path).is_dir()
    ]
    assert not new_home, f"written under the home folder: {new_home[:10]}"
    staging = ctx.root / f".{ctx.out.name}.jp-partial"
    if case.partial_ok and staging.is_dir():  # kept so the next fetch resumes
        new_files = [p for p in new_files if not p.startswith(staging.name)]
    if case.keeps:
        kept = [p for p in new_files if p == case.keeps or p.startswith(case.keeps + "/")]
        assert any(p.endswith("/stderr") for p in kept), f"{case.keeps} holds no stderr: {kept}"
        new_files = [p for p in new_files if p not in kept]
    debris = [p for p in new_files + sorted(tree(ctx.home)) if "jp-partial" in p]
    assert not debris, debris
    assert not new_files, f"written in the workspace: {new_files[:10]}"
