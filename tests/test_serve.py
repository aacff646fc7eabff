"""``jupyter-publish serve`` as a place to look and to fetch from (issue 13 items 2 and 4),
driven with an HTTP client against a real server process; presigned S3 links against
a real store."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from machines import running_serve

import jupyter_publish as jp
from jupyter_publish.errors import PublishError
from jupyter_publish.ledger import Ledger


@pytest.fixture
def served(isolated_home: Path) -> Iterator[str]:
    """A running ``jupyter-publish serve``: the base URL it printed (with its token)."""
    with running_serve(isolated_home) as base:
        yield base


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "a.csv").write_text("x,y\n1,2\n")
    (root / "log.txt").write_bytes(os.urandom(5000))
    return root


# -- item 2: any link the ledger knows is verified -------------------------------------------


def test_a_served_link_printed_after_the_publish_is_verified(results: Path, tmp_path: Path, served: str):
    """Published before serve ran (no URL recorded), fetched by the link serve prints."""
    os.unlink(Path(os.environ["JUPYTER_PUBLISH_HOME"]) / "serve.json")  # as if serve started later
    result = jp.publish(results, "local", archive=False)
    assert all(f.url is None for f in result.files)
    link = f"{served}/{result.job_id}/tables/a.csv"
    fetched = jp.fetch(link, tmp_path / "got")
    assert fetched.verified
    assert [f.verified_against for f in fetched.files] == ["sha256"]
    assert (tmp_path / "got" / "a.csv").read_text() == "x,y\n1,2\n"


def test_the_token_query_form_of_a_served_link_is_verified(results: Path, tmp_path: Path, served: str):
    result = jp.publish(results, "local", archive=False)
    base, token = served.rsplit("/", 1)
    fetched = jp.fetch(f"{base}/{result.job_id}/log.txt?token={token}", tmp_path / "got")
    assert fetched.verified


def test_a_served_archive_link_is_verified_and_its_members_checked(
    results: Path, tmp_path: Path, served: str
):
    result = jp.publish(results, "local")  # one archive
    assert result.archive is not None
    fetched = jp.fetch(f"{served}/{result.job_id}/{result.archive.path}", tmp_path / "got")
    assert fetched.verified and fetched.extracted_from == result.archive.path
    assert (tmp_path / "got" / "tables" / "a.csv").read_text() == "x,y\n1,2\n"


def test_a_link_with_another_token_is_not_taken_for_ours(results: Path, served: str):
    from jupyter_publish.serve_state import served_file

    result = jp.publish(results, "local", archive=False)
    base = served.rsplit("/", 1)[0]
    assert served_file(f"{served}/{result.job_id}/log.txt") == (result.job_id, "log.txt")
    assert served_file(f"{base}/{'x' * 43}/{result.job_id}/log.txt") is None
    assert served_file(f"http://10.0.0.1:1/{served.rsplit('/', 1)[1]}/{result.job_id}/log.txt") is None


def test_a_presigned_link_signed_again_is_verified(s3_env, s3_server, s3_bucket, results, tmp_path):
    result = jp.publish(results, f"s3://{s3_bucket}/signed/{{jobID}}/", archive=False, presign="1h")
    record = next(f for f in result.files if f.path == "log.txt")
    assert record.url and "X-Amz-Signature" in record.url
    assert jp.fetch(record.url, tmp_path / "as-recorded").verified  # the link exactly as printed
    from botocore.config import Config

    signer = s3_server.client(config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    fresh = signer.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": result.params["Key"] + "log.txt"}, ExpiresIn=600
    )
    assert fresh != record.url and fresh.split("?")[0] == record.url.split("?")[0]
    fetched = jp.fetch(fresh, tmp_path / "got")
    assert fetched.verified
    assert hashlib.sha256((tmp_path / "got" / "log.txt").read_bytes()).hexdigest() == record.sha256


def test_find_by_link_ignores_only_a_recorded_query(results: Path):
    """A link recorded without a query is matched exactly, never by prefix."""
    result = jp.publish(results, "local", archive=False)
    ledger = Ledger()
    location = next(f.location for f in result.files if f.path == "log.txt")
    assert location is not None
    assert ledger.find_by_link(location) is not None
    assert ledger.find_by_link(location + "?x=1") is None
    assert ledger.find_by_link(location + "x") is None


# -- item 4: serve is a place to look ---------------------------------------------------------

HOSTILE_JOB = "<script>alert('job')</script>\"x"
HOSTILE_FILES = ["<script>alert(1)<script>.txt", "a\"b'c&d.txt", "plain.txt"]


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "hostile"
    root.mkdir()
    for name in HOSTILE_FILES:
        (root / name).write_text(f"contents of {name}")
    return root


def _links(page: str) -> list[str]:
    return re.findall(r"href='([^']*)'", page)


def test_the_index_lists_jobs_newest_first(results: Path, hostile: Path, served: str):
    first = jp.publish(results, "local", name="first-job")
    second = jp.publish(hostile, "local", archive=False, name=HOSTILE_JOB)
    response = httpx.get(served + "/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none'
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    page = response.text
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;job&#x27;)&lt;/script&gt;&quot;x" in page
    assert page.index(second.job_id) < page.index(first.job_id)  # newest first
    for header in ("time", "name", "files", "size", "content CID", "status"):
        assert f"<th>{header}</th>" in page
    assert second.root_cid and second.root_cid in page and first.root_cid in page
    assert "published" in page and ">3<" in page  # three files in the second job
    token = served.rsplit("/", 1)[1]
    assert f"/{token}/{second.job_id}/" in _links(page)


def test_a_job_page_lists_its_files_and_links_that_serve_them(hostile: Path, served: str):
    result = jp.publish(hostile, "local", archive=False, name=HOSTILE_JOB)
    page = httpx.get(f"{served}/{result.job_id}/").text
    assert "<script" not in page.lower()
    for record in (f for f in result.files if f.kind == "file"):
        assert record.sha256 in page and record.cid in page
    origin = re.match(r"http://[^/]+", served).group(0)
    links = [link for link in _links(page) if link.count("/") > 2]
    assert len(links) == 3
    for link in links:
        response = httpx.get(origin + link.replace("&amp;", "&"))
        assert response.status_code == 200
        body = response.content
        assert body.startswith(b"contents of ")
        assert response.headers["x-checksum-sha256"] == hashlib.sha256(body).hexdigest()


def test_an_archive_job_page_links_the_files_inside(results: Path, served: str):
    result = jp.publish(results, "local")
    page = httpx.get(f"{served}/{result.job_id}/").text
    origin = re.match(r"http://[^/]+", served).group(0)
    token = served.rsplit("/", 1)[1]
    link = f"/{token}/{result.job_id}/tables/a.csv"
    assert link in _links(page)
    response = httpx.get(origin + link)
    assert response.text == "x,y\n1,2\n"
    record = next(f for f in result.files if f.path == "tables/a.csv")
    assert response.headers["x-checksum-sha256"] == record.sha256
    assert httpx.head(origin + link).status_code == 200


def test_a_failed_job_is_listed_with_its_status(tmp_path: Path, served: str):
    with pytest.raises(PublishError):
        jp.publish(tmp_path / "missing", "local", name="broken")
    page = httpx.get(served + "/").text
    assert "broken" in page and "failed" in page


def test_pages_need_the_token_and_listen_on_loopback_only(results: Path, served: str):
    result = jp.publish(results, "local")
    origin = re.match(r"http://[^/]+", served).group(0)
    assert origin.startswith("http://127.0.0.1:")
    assert httpx.get(origin + "/").status_code == 403
    assert httpx.get(f"{origin}/{result.job_id}/").status_code == 403
    assert httpx.get(f"{origin}/{'y' * 43}/").status_code == 403
    token = served.rsplit("/", 1)[1]
    assert httpx.get(f"{origin}/?token={token}").status_code == 200
    assert httpx.get(f"{served}/j-NOSUCHJOB/").status_code == 404

    from jupyter_publish.serve import make_server

    server = make_server(0, "t" * 40)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


# -- ranges: a served file is read in parallel ranges and resumed like any HTTP file ------


def test_a_served_file_answers_byte_ranges(results: Path, served: str):
    result = jp.publish(results, "local", archive=False)
    link = f"{served}/{result.job_id}/log.txt"
    data = (results / "log.txt").read_bytes()
    sha = hashlib.sha256(data).hexdigest()

    whole = httpx.get(link)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.content == data

    cases = {"bytes=10-19": (10, 19), "bytes=4990-": (4990, 4999), "bytes=-7": (4993, 4999)}
    cases["bytes=4000-999999"] = (4000, 4999)  # a last byte past the end is cut to the end
    for header, (first, last) in cases.items():
        part = httpx.get(link, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {first}-{last}/5000", header
        assert part.content == data[first : last + 1], header

    refused = httpx.get(link, headers={"Range": "bytes=5000-"})
    assert refused.status_code == 416 and refused.headers["content-range"] == "bytes */5000"
    # What this server does not split is answered whole, as RFC 9110 allows.
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=-"):
        assert httpx.get(link, headers={"Range": header}).content == data, header
    # A resume against a file that changed since (another ETag) gets the whole file.
    stale = httpx.get(link, headers={"Range": "bytes=10-", "If-Range": '"' + "0" * 64 + '"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = httpx.get(link, headers={"Range": "bytes=10-", "If-Range": f'"{sha}"'})
    assert fresh.status_code == 206 and fresh.content == data[10:]
    # Range is defined for GET only (RFC 9110 14.2): a HEAD describes the whole file.
    head = httpx.head(link, headers={"Range": "bytes=0-99"})
    assert head.status_code == 200 and head.headers["content-length"] == "5000" and not head.content


def test_a_big_served_file_is_fetched_in_ranges_and_verified(tmp_path: Path, served: str):
    from jupyter_publish.backends.http import HttpBackend

    big = tmp_path / "big"
    big.mkdir()
    (big / "data.bin").write_bytes(os.urandom(20 * 2**20))  # more than one 8 MiB range
    result = jp.publish(big, "local", archive=False)
    link = f"{served}/{result.job_id}/data.bin"
    (listed,) = HttpBackend(url=link).list(link)
    assert listed.ranged and listed.size == 20 * 2**20
    fetched = jp.fetch(link, tmp_path / "got")
    assert fetched.verified
    got = (tmp_path / "got" / "data.bin").read_bytes()
    assert hashlib.sha256(got).hexdigest() == result.files[0].sha256


def test_a_range_with_more_digits_than_int_reads_is_still_answered(results: Path, served: str):
    """Python's int() refuses more than 4300 decimal digits: such a Range (sent with the
    token) dropped the connection with no answer and a traceback on the owner's terminal."""
    result = jp.publish(results, "local", archive=False)
    link = f"{served}/{result.job_id}/log.txt"
    data = (results / "log.txt").read_bytes()
    huge = "9" * 5000
    expected = {
        f"bytes={huge}-": (416, b""),  # first byte past the end
        f"bytes=0-{huge}": (206, data),  # last byte cut to the end
        f"bytes=-{huge}": (206, data),  # a suffix longer than the file: all of it
        f"bytes={'0' * 5000}10-19": (206, data[10:20]),  # leading zeros change nothing
    }
    for header, (status, content) in expected.items():
        answer = httpx.get(link, headers={"Range": header})
        assert (answer.status_code, answer.content) == (status, content), header[:20]


def test_a_range_is_read_by_its_ascii_grammar_only(results: Path, served: str):
    """RFC 9110 digits and whitespace are ASCII; Python's ``\\s`` also takes NBSP and
    U+001C..U+001F (a Latin-1 header), and one of two Range headers was picked."""
    result = jp.publish(results, "local", archive=False)
    link = f"{served}/{result.job_id}/log.txt"
    data = (results / "log.txt").read_bytes()
    for header in ("bytes=\xa010-19", "bytes=10-19\x1c", "bytes=\x8510-19"):
        answer = httpx.get(link, headers={"Range": header.encode("latin-1")})
        assert answer.status_code == 200 and answer.content == data, repr(header)
    twice = [("Range", "bytes=0-1"), ("Range", "bytes=5-6")]
    answer = httpx.get(link, headers=twice)
    assert answer.status_code == 200 and answer.content == data


def test_an_empty_served_file_refuses_no_suffix_range(tmp_path: Path, served: str):
    """RFC 9110 14.1.1: on an empty file a suffix range (bytes=-N, N > 0) is satisfiable,
    so it gets the (empty) file, not 416; bytes=0-0 has no byte 0 and stays 416."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "empty").write_bytes(b"")
    result = jp.publish(tmp_path / "r", "local", archive=False)
    link = f"{served}/{result.job_id}/empty"
    suffix = httpx.get(link, headers={"Range": "bytes=-1"})
    assert suffix.status_code == 200 and suffix.content == b""
    assert httpx.get(link, headers={"Range": "bytes=0-0"}).status_code == 416
    assert jp.fetch(link, tmp_path / "got").verified


def test_a_client_hanging_up_mid_answer_leaves_no_traceback(tmp_path: Path, isolated_home: Path, capfd):
    """A cancelled fetch or a stopped ranged read is normal: the owner's terminal stays quiet."""
    import socket
    import threading

    from jupyter_publish.serve import make_server

    big = tmp_path / "big"
    big.mkdir()
    (big / "data.bin").write_bytes(os.urandom(16 * 2**20))
    result = jp.publish(big, "local", archive=False, quiet=True)
    server = make_server(0, "t" * 40)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as client:
                request = f"GET /{'t' * 40}/{result.job_id}/data.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                client.sendall(request.encode())
                assert client.recv(65536).startswith(b"HTTP/1.0 200")
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        deadline = time.monotonic() + 10
        while threading.active_count() > 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the handler threads meet the hang-up and end
        assert httpx.get(f"http://127.0.0.1:{port}/{'t' * 40}/").status_code == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err


def test_a_file_whose_blob_is_gone_is_not_found_without_a_traceback(
    tmp_path: Path, isolated_home: Path, capfd
):
    """A blob removed from the store (by hand, or between listing and opening it) used to
    get a 200 and its headers, then a traceback in the owner's terminal and a cut-off
    body: a fetch retried it as a broken connection. It is a 404 before any header."""
    import threading

    from jupyter_publish.errors import NotFoundError
    from jupyter_publish.serve import make_server

    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(100_000))
    result = jp.publish(src, "local", archive=False, quiet=True)
    (sha256,) = [f.sha256 for f in result.files if f.kind == "file"]
    (isolated_home / "store" / "blobs" / "sha256" / sha256[:2] / sha256).unlink()
    server = make_server(0, "t" * 40)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        link = f"http://127.0.0.1:{server.server_address[1]}/{'t' * 40}/{result.job_id}/data.bin"
        assert httpx.get(link).status_code == 404
        assert httpx.head(link).status_code == 404
        with pytest.raises(NotFoundError) as info:
            jp.fetch(link, tmp_path / "got")
        assert "gave up" not in str(info.value)
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
