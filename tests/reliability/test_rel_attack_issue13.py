"""Attacks on issue 13: the failing-cell section, ``serve``'s pages, preflight, links the
ledger knows, ``local://JOB/path`` inside archives. What broke, each pinned by a test."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import jupyter_publish as jp
from jupyter_publish.backends.local import LocalBackend
from jupyter_publish.catalog.catalog import job_body
from jupyter_publish.crate import crate_metadata
from jupyter_publish.errors import BackendError, IntegrityError
from jupyter_publish.ledger import Ledger
from jupyter_publish.preflight import check_reachable
from jupyter_publish.preview import preview
from jupyter_publish.redact import scrub
from jupyter_publish.serve import make_server, serve_token
from jupyter_publish.serve_state import state_file
from jupyter_publish.widgets import jobs_browser

SIGNATURE = "deadbeefcafe0123456789abcdef0123456789abcdef0123456789abcdef0123"
PRESIGNED = (
    "https://s3.example.com/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential=AKIAEXAMPLEKEYID123%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature={SIGNATURE}"
)
PASSWORD = "hunter2hunter2"


@pytest.fixture
def cwd(ip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- the failing-cell section -------------------------------------------------------------


def test_a_failed_cells_kept_traceback_holds_no_secret(ip, cwd: Path) -> None:
    """The traceback written into the kept (and, with --publish-on-error, published)
    stderr was not scrubbed, though the folded one shown was; ``password=…`` in the
    error's message was shown and kept as is. (Built at run time: the cell's own source
    line is the user's to show.)"""
    cell = (
        "%%publish local\n(OUTPUT / 'half.txt').write_text('x')\n"
        f"raise RuntimeError('download failed: ' + {PRESIGNED!r} + ' password=' + {PASSWORD[::-1]!r}[::-1])\n"
    )
    with capture_output() as io:
        result = ip.run_cell(cell)
    assert type(result.error_in_exec) is UsageError
    shown = str(result.error_in_exec) + "".join(o.data.get("text/html", "") for o in io.outputs)
    (stderr,) = (cwd / "jupyter-publish-outputs").glob("*/stderr")
    kept = stderr.read_text()
    assert "RuntimeError: download failed" in kept  # the traceback is there
    for text in (shown, kept):
        assert SIGNATURE not in text
        assert PASSWORD not in text


# -- links the ledger knows ---------------------------------------------------------------


class _QueryDrop(BaseHTTPRequestHandler):
    """An HTTP drop whose download links differ only by query: ``/get?file=NAME``."""

    stored: ClassVar[dict[str, bytes]] = {}

    def do_PUT(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        self.stored[name] = self.rfile.read(int(self.headers["Content-Length"]))
        body = f"http://127.0.0.1:{self.server.server_address[1]}/get?file={name}\n".encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._object(body=True)

    def do_HEAD(self) -> None:
        self._object(body=False)

    def _object(self, body: bool) -> None:
        name = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("file", [""])[0]
        data = self.stored.get(name)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_link_that_differs_in_its_query_is_another_object(tmp_path: Path) -> None:
    """``…/get?file=b.txt`` was taken for the recorded ``…/get?file=a.txt`` (matched up to
    its query, as a presigned link signed again is), so a fetch of another, untampered
    object failed as if its bytes had been swapped."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QueryDrop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "a.txt").write_text("the recorded file")
        port = server.server_address[1]
        result = jp.publish(src, f"http://127.0.0.1:{port}/up/", archive=False)
        assert result.files[0].url == f"http://127.0.0.1:{port}/get?file=a.txt"
        other = _QueryDrop.stored["b.txt"] = b"a colleague's file, never published from here"
        fetched = jp.fetch(f"http://127.0.0.1:{port}/get?file=b.txt", tmp_path / "b")
        assert not fetched.verified  # nothing recorded to check it against, and no false alarm
        assert [f.read_bytes() for f in (tmp_path / "b").rglob("*") if f.is_file()] == [other]
        assert jp.fetch(str(result.files[0].url), tmp_path / "a").verified  # the recorded one still is
        _QueryDrop.stored["a.txt"] = b"swapped"
        with pytest.raises(IntegrityError):
            jp.fetch(str(result.files[0].url), tmp_path / "a2")
    finally:
        server.shutdown()
        server.server_close()


# -- preflight ------------------------------------------------------------------------------


def test_a_name_that_never_resolves_does_not_hold_the_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket timeout does not cover the name's lookup: with no network the resolver
    may take minutes, and the cell's preflight waited that long. Here a resolver that
    never answers (held until the test ends), no network needed."""
    release = threading.Event()
    real = socket.getaddrinfo

    def resolver(host: str, *args: object, **kwargs: object) -> object:
        if host == "offline.example":
            release.wait(60)
            raise socket.gaierror("no network")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match=r"offline\.example:443 \(name not resolved in 1 s\)"):
            check_reachable("https://offline.example/bucket", "the S3 endpoint", timeout=1)
    finally:
        release.set()
    assert time.monotonic() - started < 3


def test_an_endpoint_that_accepts_but_never_answers_fails_the_preflight() -> None:
    """A hung server (or a tarpit) accepts the connection the preflight made and passed;
    the cell then ran, and its publish waited out every timeout and retry (minutes)."""
    with socket.socket() as listener:  # the kernel accepts for it; nothing is ever read
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        for scheme in ("http", "https"):
            started = time.monotonic()
            with pytest.raises(BackendError, match="accepts connections but does not answer in 1 s"):
                check_reachable(f"{scheme}://127.0.0.1:{port}/", "the S3 endpoint", timeout=1)
            assert time.monotonic() - started < 3


def test_a_server_that_answers_anything_passes_and_a_refused_port_fails() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QueryDrop)  # HEAD / is a 404: an answer
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        check_reachable(f"http://127.0.0.1:{port}/", "the HTTP server", timeout=2)
        check_reachable(f"http://localhost:{port}/", "the HTTP server", timeout=2)
        check_reachable(f"https://127.0.0.1:{port}/", "the S3 endpoint", timeout=2)  # not TLS: said so
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(BackendError, match="Connection refused"):
        check_reachable(f"http://127.0.0.1:{port}/", "the HTTP server", timeout=2)


def test_a_secret_from_an_aws_profile_is_masked_in_a_failed_cell(
    ip, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys in ``~/.aws/credentials`` (not the environment) are known to the scrubber only
    once a backend read them; the preflight read them, but the cell failed before any
    backend did, and an error message repeating the key was shown and kept as is."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPROFILEKEY"
    credentials = cwd / "aws-credentials"
    credentials.write_text(
        f"[team]\naws_access_key_id = AKIAPROFILEKEYID0001\naws_secret_access_key = {secret}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_PROFILE", "team")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QueryDrop)  # an endpoint that answers
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cell = (
        f"%%publish s3://bucket/x/ --endpoint http://127.0.0.1:{server.server_address[1]}\n"
        "import configparser, os\n"
        "c = configparser.ConfigParser(); c.read(os.environ['AWS_SHARED_CREDENTIALS_FILE'])\n"
        "creds = dict(c['team'])\n"
        "raise RuntimeError(f'could not connect with {creds!r}')\n"
    )
    try:
        with capture_output() as io:
            result = ip.run_cell(cell)
    finally:
        server.shutdown()
        server.server_close()
    assert type(result.error_in_exec) is UsageError
    assert "could not connect with" in str(result.error_in_exec)  # the cell ran and failed
    shown = str(result.error_in_exec) + "".join(o.data.get("text/html", "") for o in io.outputs)
    (stderr,) = (cwd / "jupyter-publish-outputs").glob("*/stderr")
    for text in (shown, stderr.read_text()):
        assert secret not in text


# -- a jobs browser open while many jobs are published ------------------------------------


def test_publishing_many_jobs_does_not_redraw_the_selected_jobs_files(tmp_path: Path) -> None:
    """Each publish (two row changes) re-drew the selected job's files table: with a
    5,000-file job selected, 30 small publishes took 38 s instead of 2.5 s."""
    big = tmp_path / "big"
    big.mkdir()
    for i in range(300):
        (big / f"f{i}.txt").write_text(str(i))
    selected = jp.publish(big, "local", archive=False).job_id
    browser = jobs_browser()
    browser.select(selected)
    drawn = browser.details.outputs
    assert drawn  # the files table
    marker = ({"output_type": "display_data", "data": {"text/plain": "not drawn again"}, "metadata": {}},)
    browser.details.outputs = marker  # a redraw replaces it
    small = tmp_path / "small"
    small.mkdir()
    (small / "a.txt").write_text("a")
    published = [jp.publish(small, "local", archive=False, name=f"n{i}").job_id for i in range(5)]
    assert browser.details.outputs == marker
    assert browser.jobs.value == selected
    listed = {value for _label, value in browser.jobs.options}
    assert set(published) <= listed  # still current without Refresh
    browser.refresh()  # asked for: shown again
    assert browser.details.outputs == drawn
    browser.close()


def test_the_kept_outputs_link_is_a_quoted_url(ip, cwd: Path) -> None:
    """The link to the kept outputs was the folder's path as is: a fetch_dir named
    ``runs #1`` linked to ``runs `` (the rest taken for a fragment), ``100%`` to nothing."""
    ip.run_line_magic("config", "PublishMagics.fetch_dir = 'runs #1 100%'")
    try:
        with capture_output() as io:
            result = ip.run_cell("%%publish local\n(OUTPUT / 'half.txt').write_text('x')\n1/0\n")
    finally:
        ip.run_line_magic("config", "PublishMagics.fetch_dir = ''")
    assert type(result.error_in_exec) is UsageError
    html = "".join(o.data.get("text/html", "") for o in io.outputs)
    (kept,) = (cwd / "runs #1 100%").iterdir()
    link = f"runs%20%231%20100%25/{kept.name}"
    assert f"href='{link}'" in html and f"href='{link}/stderr'" in html
    assert "<code>runs #1 100%/" in html  # shown as the folder is named


# -- serve's pages ---------------------------------------------------------------------------


@pytest.fixture
def serving() -> Iterator[str]:
    """``jupyter-publish serve``'s server in this process: its base URL, token included."""
    token = "t" * 43
    server = make_server(0, token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{token}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_job_page_shows_hidden_characters_as_escapes(tmp_path: Path, serving: str) -> None:
    """A right-to-left override made ``\\u202egnp.exe`` read ``exe.png`` in the listing;
    a terminal escape or a bell went into the page as is."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "\u202egnp.exe").write_text("not a picture")
    (src / "ctl\x1b[31m\x07.txt").write_text("c")
    job = jp.publish(src, "local", archive=False, name="job\u202e\x1b").job_id
    for page in (httpx.get(f"{serving}/").text, httpx.get(f"{serving}/{job}/").text):
        assert not any(c in page for c in "\u202e\x1b\x07"), page
        assert "job\\u202e\\u001b" in page
    page = httpx.get(f"{serving}/{job}/").text
    assert "\\u202egnp.exe" in page and "ctl\\u001b[31m\\u0007.txt" in page
    assert "/%E2%80%AEgnp.exe'" in page  # the link still opens the file


def test_a_served_file_is_never_a_page_of_the_origin(tmp_path: Path, serving: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.html").write_text("<script>fetch('/').then(r => r.text())</script>")
    job = jp.publish(src, "local", archive=False).job_id
    response = httpx.get(f"{serving}/{job}/x.html")
    assert response.status_code == 200 and response.text.startswith("<script>")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


# -- local://JOB/path inside a stored archive -------------------------------------------------


def test_a_member_added_to_a_tampered_stored_archive_is_refused(tmp_path: Path) -> None:
    """A member the ledger has no sha256 for was read out of a stored archive that no
    longer hashed to its name, and written (``NOT verified``)."""
    src = tmp_path / "results"
    src.mkdir()
    (src / "a.csv").write_text("x,y\n1,2\n")
    result = jp.publish(src, "local")
    assert result.archive is not None
    store = LocalBackend()
    blob = store.blob_path(result.archive.sha256)
    os.chmod(blob, 0o600)
    with tarfile.open(blob, "w:gz") as tar:
        for name, data in (("a.csv", b"x,y\n1,2\n"), ("extra.sh", b"rm -rf ~")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    for ref in (f"local://{result.job_id}/extra.sh", f"local://{result.job_id}/results.tar.gz#"):
        out = tmp_path / "out"
        with pytest.raises(IntegrityError, match="stored archive"):
            jp.fetch(ref, out)
        assert not out.exists() or not any(out.rglob("*"))


# -- previews of a big folder -------------------------------------------------------------------

_OPENED: list[str] = []
_WATCHING: list[str] = []


def _count_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _WATCHING and str(args[0]).startswith(_WATCHING[0]):
        _OPENED.append(str(args[0]))


def test_a_big_folders_preview_does_not_open_every_file_five_times(tmp_path: Path) -> None:
    """Every file's kind was sniffed for a tar inside gzip, bz2, xz and zstd before its
    name was looked at: a 20,000-file folder's preview took 6.7 s, mostly opening files."""
    folder = tmp_path / "results"
    for i in range(20):
        sub = folder / f"d{i:02d}"
        sub.mkdir(parents=True)
        for j in range(100):
            (sub / f"f{j:03d}{('.md', '.csv', '.txt', '.json')[j % 4]}").write_text(f"{i},{j}\n")
    sys.addaudithook(_count_opens)
    _OPENED.clear()
    _WATCHING[:] = [str(folder)]
    try:
        shown = preview(folder)._repr_mimebundle_()
    finally:
        _WATCHING.clear()
    assert "2,000 files" in shown["text/plain"]
    assert len(_OPENED) < 100, len(_OPENED)  # the few previewed inline, not 2,000 x 5


def test_a_dead_proxy_fails_the_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy in the environment the check was skipped altogether (a direct
    connect proves nothing), so a dead proxy let the cell run, and the publish failed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    with pytest.raises(BackendError, match=rf"the proxy for the S3 endpoint at 127\.0\.0\.1:{dead}"):
        check_reachable("https://s3.example.com/", "the S3 endpoint", timeout=1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QueryDrop)  # a proxy that answers
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{server.server_address[1]}")  # no scheme, as often
        check_reachable("https://s3.example.com/", "the S3 endpoint", timeout=2)
        monkeypatch.setenv("NO_PROXY", "localhost")  # bypassed: the endpoint itself is asked
        with pytest.raises(BackendError, match=rf"the S3 endpoint at localhost:{dead} \(Connection refused"):
            check_reachable(f"https://localhost:{dead}/", "the S3 endpoint", timeout=1)
    finally:
        server.shutdown()
        server.server_close()


def test_the_serve_token_never_reaches_a_team_catalog_or_a_crate(tmp_path: Path) -> None:
    """A local publish while ``serve`` runs records links with the token in their path;
    they went as is into the team catalog's record (every colleague reads it: on a shared
    host, the token opens every served job) and into an RO-Crate export."""
    token = serve_token()
    state_file().write_text(json.dumps({"url": f"http://127.0.0.1:9/{token}", "pid": os.getpid()}))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    result = jp.publish(src, "local", archive=False)
    assert token in str(result.files[0].url)  # the owner's own record keeps its link
    assert Ledger().find_by_link(str(result.files[0].url)) is not None
    record = json.dumps(job_body(Ledger(), result.job_id))
    assert result.job_id in record and token not in record
    assert token not in json.dumps(crate_metadata(result))


def test_an_idle_connection_does_not_hold_a_serve_thread_forever() -> None:
    """A connection that never sends its request held a thread for good: any account on
    the machine could pile them up (the token is only read with the request line)."""
    server = make_server(0, "t" * 43)
    handler: Any = server.RequestHandlerClass
    assert handler.timeout is not None and handler.timeout <= 120  # bounded by default
    handler.timeout = 1  # shorter here, to see it act
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address, timeout=10) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server
            assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()


def test_masking_password_values_stays_linear() -> None:
    """The ``password=`` pattern, unbounded on both sides of its keyword, backtracked over
    every word boundary: 40 KB of ``a-a-…=`` in a message took 99 s to scrub."""
    started = time.monotonic()
    assert scrub("a-" * 20_000 + "=").endswith("a-=")
    assert time.monotonic() - started < 2
    assert scrub("PGPASSWORD=xyzzy42 db_secret_key=abc&x=1") == "PGPASSWORD=*** db_secret_key=***&x=1"


def test_a_job_changing_rereads_its_own_row_not_every_job(tmp_path: Path) -> None:
    """Each row change re-read every listed job (up to 1,000) through a DataFrame: 0.45 s,
    twice per publish, so publishing 500 jobs with a browser open cost minutes more."""
    small = tmp_path / "small"
    small.mkdir()
    (small / "a.txt").write_text("a")
    for i in range(10):
        jp.publish(small, "local", archive=False, name=f"old{i}")
    browser = jobs_browser()
    before = {id(row) for row in browser.all_rows}
    published = jp.publish(small, "local", archive=False, name="new")
    assert browser.all_rows[0]["job_id"] == published.job_id
    assert browser.all_rows[0]["status"] == "published"  # the finished row
    assert {id(row) for row in browser.all_rows[1:]} == before  # the others not read again
    assert "new" in browser.jobs.options[0][0]
    assert len(browser.all_rows) == 11 and "11 of 11 jobs" in browser.count.value
    browser.close()
