"""The http backend against real nginx servers (WebDAV and transfer.sh style)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from typing import BinaryIO

import httpx
import pytest

from jupyter_publish.backends.base import Upload
from jupyter_publish.backends.http import HttpBackend, parse_headers
from jupyter_publish.errors import BackendError, CredentialsError, DestinationError, NotFoundError
from jupyter_publish.testing.nginx import Nginx
from jupyter_publish.testing.process import free_port


class CountingReader(io.BytesIO):
    """Records how it is read: the backend must stream, and read it once."""

    def __init__(self, data: bytes, log: list[int]) -> None:
        super().__init__(data)
        self.log = log

    def read(self, size: int | None = -1) -> bytes:
        self.log.append(-1 if size is None or size < 0 else size)
        return super().read(size)


def make_upload(name: str, data: bytes, opened: list[list[int]] | None = None) -> Upload:
    def opener() -> BinaryIO:
        log: list[int] = []
        if opened is not None:
            opened.append(log)
        return CountingReader(data, log)

    return Upload(name=name, size=len(data), open=opener)


@pytest.fixture
def backend_factory() -> Iterator:
    made: list[HttpBackend] = []

    def make(**kw) -> HttpBackend:
        backend = HttpBackend(**kw)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def two_files() -> dict[str, bytes]:
    return {"report.csv": os.urandom(2_500_000), "sub dir/nested/plot #1.png": os.urandom(4321)}


def _put_all(backend: HttpBackend, uploads: list[Upload], progress=None):
    """What the core's scheduler does with a per-object backend, serially."""
    return backend.outcome([backend.put(upload, progress) for upload in uploads])


def _publish(backend: HttpBackend, files: dict[str, bytes]):
    seen: list[int] = []
    opened: list[list[int]] = []
    uploads = [make_upload(name, data, opened) for name, data in files.items()]
    outcome = _put_all(backend, uploads, progress=seen.append)
    assert sum(seen) == sum(len(d) for d in files.values())
    assert len(opened) == len(files)  # each reader opened once…
    for log in opened:
        assert log and all(0 < size <= 1024 * 1024 for size in log)  # …and read in chunks
    return outcome


def test_publish_to_dav(nginx_dav: Nginx, backend_factory, two_files) -> None:
    base = f"{nginx_dav.base_url}/drop/run-1/"
    outcome = _publish(backend_factory(url=base), two_files)
    assert outcome.type == "urlDownload"
    assert [o.name for o in outcome.objects] == list(two_files)
    assert outcome.objects[1].url == base + "sub%20dir/nested/plot%20%231.png"
    assert outcome.params == {"URL": base, "Method": "PUT"}  # several files: the folder
    for obj in outcome.objects:
        assert httpx.get(obj.location).content == two_files[obj.name]
        assert (nginx_dav.root / "drop/run-1" / obj.name).read_bytes() == two_files[obj.name]


def test_publish_single_file_to_exact_url(nginx_dav: Nginx, backend_factory) -> None:
    url = f"{nginx_dav.base_url}/exact/name.bin"
    outcome = _put_all(backend_factory(url=url), [make_upload("whatever.bin", b"abc")])
    assert outcome.objects[0].url == url  # curl --upload-file: no trailing / keeps the URL
    assert httpx.get(url).content == b"abc"


def test_publish_to_transfer(nginx_transfer: Nginx, backend_factory, two_files) -> None:
    outcome = _publish(backend_factory(url=nginx_transfer.base_url + "/"), two_files)
    urls = [o.url for o in outcome.objects]
    assert all(u and u.startswith(nginx_transfer.base_url + "/") for u in urls)
    assert urls[1].endswith("/plot%20%231.png")  # the server chose the URL
    for obj in outcome.objects:
        assert httpx.get(obj.location).content == two_files[obj.name]


def test_publish_form_post(nginx_transfer: Nginx, backend_factory, two_files) -> None:
    backend = backend_factory(url=nginx_transfer.base_url + "/", method="post")
    outcome = _publish(backend, two_files)
    assert outcome.params["Method"] == "POST"
    for obj in outcome.objects:
        assert httpx.get(obj.location).content == two_files[obj.name]


def test_post_where_not_allowed(nginx_dav: Nginx, backend_factory) -> None:
    url = nginx_dav.base_url + "/static.txt"
    httpx.put(url, content=b"static").raise_for_status()
    backend = backend_factory(url=url, method="POST")  # nginx refuses POST to a file
    with pytest.raises(BackendError, match=r"^http://\S+/static.txt answered HTTP 405 Not Allowed"):
        _put_all(backend, [make_upload("a", b"a")])


def test_read_with_offset(nginx_dav: Nginx, backend_factory) -> None:
    data = os.urandom(3_000_000)
    url = _put_all(backend_factory(url=nginx_dav.base_url + "/r/"), [make_upload("d", data)]).url
    backend = backend_factory()
    assert b"".join(backend.read(url)) == data
    assert b"".join(backend.read(url, offset=1_234_567)) == data[1_234_567:]
    assert b"".join(backend.read(url, offset=len(data))) == b""
    [obj] = backend.list(url)
    assert (obj.name, obj.location, obj.size) == ("d", url, len(data))


@pytest.mark.servers  # starts its own nginx
def test_read_with_offset_when_server_ignores_range(tmp_path, backend_factory) -> None:
    with Nginx(ranges=False, workdir=tmp_path / "n") as server:
        data = os.urandom(2_100_000)
        url = f"{server.base_url}/whole.bin"
        httpx.put(url, content=data).raise_for_status()
        assert httpx.get(url, headers={"Range": "bytes=5-"}).status_code == 200
        chunks = backend_factory().read(url, offset=1_500_000)
        assert b"".join(chunks) == data[1_500_000:]


def test_missing_is_not_found(nginx_dav: Nginx, backend_factory) -> None:
    backend = backend_factory()
    with pytest.raises(NotFoundError):
        b"".join(backend.read(nginx_dav.base_url + "/no/such/file"))
    with pytest.raises(NotFoundError):
        backend.list(nginx_dav.base_url + "/no/such/file")


def test_too_large_is_one_line(nginx_small: Nginx, backend_factory) -> None:
    backend = backend_factory(url=nginx_small.base_url + "/drop/")
    with pytest.raises(BackendError) as info:
        _put_all(backend, [make_upload("big.bin", os.urandom(64 * 1024))])
    message = str(info.value)
    assert "HTTP 413" in message and "big.bin (65536 bytes)" in message
    assert "\n" not in message


def test_auth_wrong_and_right(nginx_auth: Nginx, backend_factory) -> None:
    user, password = nginx_auth.auth_user or "", nginx_auth.auth_password or ""
    base = nginx_auth.base_url + "/auth/"
    with pytest.raises(CredentialsError, match=r"HTTP 401.*JUPYTER_PUBLISH_HTTP_AUTH"):
        _put_all(backend_factory(url=base), [make_upload("a.txt", b"a")])
    with pytest.raises(CredentialsError):
        _put_all(backend_factory(url=base, auth=(user, "wrong")), [make_upload("a.txt", b"a")])
    backend = backend_factory(url=base, auth=(user, password))
    outcome = _put_all(backend, [make_upload("a.txt", b"secret data")])
    assert b"".join(backend.read(outcome.objects[0].location)) == b"secret data"
    with pytest.raises(CredentialsError):
        b"".join(backend_factory().read(outcome.objects[0].location))


def test_auth_from_env_is_never_shown(
    nginx_auth: Nginx, backend_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = nginx_auth.auth_user or "", nginx_auth.auth_password or ""
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", f"{user}:{password}")
    backend = backend_factory(url=nginx_auth.base_url + "/env/")
    outcome = _put_all(backend, [make_upload("e.txt", b"e")])
    assert password not in repr(outcome)
    assert outcome.params == {"URL": outcome.objects[0].url, "Method": "PUT"}

    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", f"{user}:wrong-{password}")
    with pytest.raises(CredentialsError) as info:
        _put_all(backend_factory(url=nginx_auth.base_url + "/env/"), [make_upload("e", b"e")])
    assert password not in str(info.value)


def test_headers_from_env(nginx_auth: Nginx, backend_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    token = base64.b64encode(f"{nginx_auth.auth_user}:{nginx_auth.auth_password}".encode())
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", f"Authorization: Basic {token.decode()}; X-Foo: y")
    outcome = _put_all(backend_factory(url=nginx_auth.base_url + "/hdr/"), [make_upload("h", b"h")])
    assert token.decode() not in repr(outcome)


def test_userinfo_in_url_becomes_auth(nginx_auth: Nginx, backend_factory) -> None:
    host = nginx_auth.base_url.removeprefix("http://")
    url = f"http://{nginx_auth.auth_user}:{nginx_auth.auth_password}@{host}/ui/"
    outcome = _put_all(backend_factory(url=url), [make_upload("u.txt", b"u")])
    assert str(nginx_auth.auth_password) not in repr(outcome)
    assert outcome.objects[0].url == f"{nginx_auth.base_url}/ui/u.txt"


def test_connection_refused(backend_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", "someone:hunter2-very-secret")
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", "Authorization: Bearer tok-very-secret")
    url = f"http://127.0.0.1:{free_port()}/drop/"
    with pytest.raises(BackendError) as info:
        _put_all(backend_factory(url=url), [make_upload("x", b"x")])
    message = str(info.value)
    assert message.startswith(f"cannot reach {url}")
    assert "\n" not in message and "very-secret" not in message


def test_auth_as_string_and_bad_urls(nginx_auth: Nginx, backend_factory) -> None:
    auth = f"{nginx_auth.auth_user}:{nginx_auth.auth_password}"
    _put_all(backend_factory(url=nginx_auth.base_url + "/s/", auth=auth), [make_upload("s", b"s")])
    for bad in ("ftp://host/x/", "http:///nohost/", "http://host:port/"):
        with pytest.raises(DestinationError):
            HttpBackend(url=bad)
    with pytest.raises(DestinationError):
        HttpBackend(url=nginx_auth.base_url + "/", method="PATCH")


def test_parse_headers_keeps_semicolons_in_values() -> None:
    parsed = parse_headers("Authorization: Bearer x; Cookie: a=1; b=2;X-Foo: y")
    assert parsed == {"Authorization": "Bearer x", "Cookie": "a=1; b=2", "X-Foo": "y"}
