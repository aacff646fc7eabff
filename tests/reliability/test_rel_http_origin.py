"""Credentials stay with the drop they were configured for; a 200 is not proof of storage.

Two fake origins: the drop takes uploads and names a download URL on a second server,
which records every request's headers. Whatever path reaches the second server
(publish's read-back, fetch by job ID, by PublishedResult, by URL, a redirect), it
never sees the drop's basic auth or custom headers, and the result still fetches
(unauthenticated) and verifies. A drop that answers 200 and stores nothing, or stores
less than was sent, fails the publish in one line and the job is ``failed``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_drops import FakeServer, Store

import jupyter_publish as jp
from jupyter_publish.errors import BackendError
from jupyter_publish.ledger import Ledger

TOKEN = "X-Drop-Token: tok-3f9a1c77e2"
AUTH = "ana:pa55-w0rd"


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("x,y\n1,2\n")
    (root / "sub" / "b.txt").write_text("hello world\n" * 100)
    return root


@pytest.fixture
def servers() -> Iterator[tuple[Store, FakeServer, FakeServer]]:
    store = Store()
    files = FakeServer(store, "files")
    drop = FakeServer(store, "drop", files_base=files.url)
    try:
        yield store, drop, files
    finally:
        drop.close()
        files.close()


def _leaked(requests: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in requests if "authorization" in r or "x-drop-token" in r]


@pytest.mark.parametrize("archive", [True, False])
def test_credentials_never_reach_the_download_origin(servers, results, tmp_path, monkeypatch, archive):
    store, drop, files = servers
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_AUTH", AUTH)
    monkeypatch.setenv("JUPYTER_PUBLISH_HTTP_HEADERS", TOKEN)
    result = jp.publish(results, f"{drop.url}/drop/{{jobID}}/", archive=archive)
    assert all("authorization" in r and "x-drop-token" in r for r in store.seen["drop"])
    first = result.archive if archive else result.files[0]
    assert first.url.startswith(files.url)

    by_job = jp.fetch(result.job_id, tmp_path / "by-job")
    by_result = jp.fetch(result, tmp_path / "by-result")
    by_url = jp.fetch(first.url, tmp_path / "by-url")
    assert by_job.verified and by_result.verified and by_url.verified
    assert (tmp_path / "by-job" / "sub" / "b.txt").read_bytes() == (results / "sub" / "b.txt").read_bytes()
    assert store.seen["files"], "the download origin was never asked"
    assert not _leaked(store.seen["files"])


def test_explicit_credentials_go_where_they_were_given(servers, results, tmp_path):
    store, drop, _ = servers
    creds = {"auth": AUTH, "headers": {"X-Drop-Token": "t0ken-x"}}
    result = jp.publish(results, f"{drop.url}/drop/", archive=True, **creds)
    assert not _leaked(store.seen["files"])  # the read-back HEAD went there bare
    fetched = jp.fetch(result.archive.url, tmp_path / "back", **creds)
    assert fetched.verified
    assert _leaked(store.seen["files"])  # asked to, explicitly, for that URL: sent
    assert not [r for r in store.seen["files"][-1:] if "x-drop-token" not in r]


@pytest.mark.parametrize("mode", ["liar", "short"])
def test_drop_that_stores_nothing_fails_the_publish(results, mode):
    store = Store()
    drop = FakeServer(store, "drop", mode=mode)
    try:
        with pytest.raises(BackendError) as caught:
            jp.publish(results, f"{drop.url}/drop/", archive=True)
    finally:
        drop.close()
    message = str(caught.value)
    assert "\n" not in message and "results.tar.gz" in message
    assert ("not there" if mode == "liar" else "holds") in message
    (job,) = Ledger().jobs()
    assert job["status"] == "failed" and job["error"] == message


def test_read_back_by_ranged_get_where_head_is_refused(results, tmp_path):
    store = Store()
    files = FakeServer(store, "files", mode="no-head")
    drop = FakeServer(store, "drop", files_base=files.url)
    try:
        result = jp.publish(results, f"{drop.url}/drop/", archive=True)
        assert any(r.get("range") == "bytes=0-0" for r in store.seen["files"])
        assert jp.fetch(result.job_id, tmp_path / "back").verified
    finally:
        drop.close()
        files.close()
