"""An archive upload cut mid-stream is made again and sent again (issue 9, item 5).

The archive is streamed as it is made, so a retry cannot re-read it from disk: it is made
again (the stream is deterministic) and sent again from byte 0, the re-made bytes checked
against the sha256 of what was sent. The real servers (nginx, js-ipfs, SeaweedFS) sit
behind the fault proxy; every recorded digest must be of the bytes finally stored.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import httpx
import pytest
from fault_proxy import Fault, FaultProxy
from rel_stores import MiB, Store

import jupyter_publish as jp
from jupyter_publish.archive import ArchiveStream
from jupyter_publish.bundle import collect
from jupyter_publish.errors import SourceError, TransientError
from jupyter_publish.ledger import Ledger

pytestmark = pytest.mark.servers  # every test here reaches a real store through Store


@pytest.fixture(autouse=True)
def _policy(monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "2")
    monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", "5")


def _tree(tmp_path):
    """An incompressible file (so the archive is ~3 MiB), a text file and a subfolder."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "data.bin").write_bytes(os.urandom(3 * MiB))
    (src / "notes.txt").write_text("a line of notes\n" * 1000)
    (src / "sub" / "small.csv").write_text("a,b\n1,2\n")
    return src


def _archive_sha256(src) -> str:
    digest = hashlib.sha256()
    with ArchiveStream(collect(src)) as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def _check_result(result, src, store, proxy, tmp_path):
    """The recorded digests are of the stored bytes, and a fetch by job ID verifies them."""
    assert result.archive.sha256 == _archive_sha256(src)
    assert result.root_cid == jp.cid_of(src)
    recorded = Ledger().result(result.job_id)
    assert recorded.archive.sha256 == result.archive.sha256
    assert recorded.archive.cid == result.archive.cid
    assert recorded.root_cid == result.root_cid
    files = [f for f in recorded.files if f.kind == "file"]
    assert len(files) == 3
    for record in files:
        assert record.sha256 == hashlib.sha256((src / record.path).read_bytes()).hexdigest()
    fetched = store.fetch(result, tmp_path / "out", proxy)
    assert fetched.verified
    got = {f.path.relative_to(fetched.dest).as_posix(): f.path.read_bytes() for f in fetched.files}
    assert got == {
        p.relative_to(src).as_posix(): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()
    }


CUTS = [
    ("http", "up", 1),
    ("http", "up", 100_000),
    ("http", "up", 2 * MiB),
    ("http", "down", 1),
    ("ipfs", "up", 1),
    ("ipfs", "up", 100_000),
    ("ipfs", "up", 2 * MiB),
    ("ipfs", "down", 1),
    ("s3", "up", 100_000),
    ("s3", "up", 2 * MiB),
]


@pytest.mark.parametrize("kind,direction,at", CUTS, ids=[f"{k}-{d}-{a}" for k, d, a in CUTS])
def test_an_archive_upload_cut_is_made_and_sent_again(request, tmp_path, kind, direction, at):
    store = Store(kind, request)
    src = _tree(tmp_path)
    with FaultProxy(store.port) as proxy:
        # "down" at 1: the whole body was sent, the answer is cut after its first byte.
        proxy.add(Fault("cut", direction=direction, at=at, connection=None))
        started = time.monotonic()
        result = store.publish(src, proxy, archive=True)
        took = time.monotonic() - started
        connections = proxy.connections
        assert proxy.fired == 1
        assert connections >= 2
        _check_result(result, src, store, proxy, tmp_path)
    assert Ledger().job_row(result.job_id)["status"] == "published"
    print(f"{kind} {direction}@{at}: published after a cut in {took:.2f}s, {connections} connections")


def _change_when_cut(proxy, path, keep_mtime: bool) -> threading.Thread:
    """Replace ``path`` (same size) once the proxy has stalled the upload, in one step: a
    rewrite in place lets a reader meet the file half written ("shrank"), a race of the
    test, not the change of content or time each case is about."""
    stat = path.stat()
    new = path.parent.parent / f"new-{path.name}"

    def change() -> None:
        deadline = time.monotonic() + 10
        while not proxy.fired and time.monotonic() < deadline:
            time.sleep(0.01)
        new.write_bytes(os.urandom(stat.st_size))
        if keep_mtime:  # only the content tells: the re-made bytes differ from those sent
            os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(new, path)

    thread = threading.Thread(target=change, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["modified", "same-mtime"])
@pytest.mark.parametrize("kind", ["http", "ipfs"])
def test_a_source_changed_between_attempts_fails_in_one_line(
    request, tmp_path, monkeypatch, kind, keep_mtime
):
    monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", "1")
    store = Store(kind, request)
    src = _tree(tmp_path)
    with FaultProxy(store.port) as proxy:
        to, options = store.destination(proxy)
        # The upload stalls after 2 MiB of data.bin were sent; meanwhile data.bin changes.
        proxy.add(Fault("stall", direction="up", at=2 * MiB, connection=None))
        changer = _change_when_cut(proxy, src / "data.bin", keep_mtime)
        with pytest.raises(SourceError) as info:
            jp.publish(src, to, archive=True, **options)
        changer.join()
        proxy.release()
        if kind == "http":  # nothing stored under the archive's name
            assert httpx.head(f"{to}src.tar.gz").status_code == 404
    message = str(info.value)
    assert "\n" not in message and "publish again" in message, message
    if keep_mtime:  # caught by the sha256 of the bytes sent again
        assert "a source of src.tar.gz changed" in message, message
    else:  # caught by its mtime before any byte is sent again
        assert message.startswith("data.bin was modified"), message
    [job] = Ledger().jobs(limit=1)
    assert job["status"] == "failed" and job["destination"] == to and job["error"] == message


@pytest.mark.parametrize("kind", ["http", "ipfs"])
def test_cuts_on_every_connection_give_one_line_after_the_retries(request, tmp_path, kind):
    store = Store(kind, request)
    src = _tree(tmp_path)
    with FaultProxy(store.port) as proxy:
        proxy.add(Fault("cut", direction="up", at=100_000, times=1000))
        started = time.monotonic()
        with pytest.raises(TransientError) as info:
            store.publish(src, proxy, archive=True)
        took = time.monotonic() - started
        tries = proxy.connections
    message = str(info.value)
    assert "\n" not in message and "gave up after 3 attempts" in message, message
    assert tries >= 3, tries
    assert took < 15, took
    # Every archive made again was stopped with its attempt: no producer or compressor left.
    deadline = time.monotonic() + 5
    while _archive_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _archive_threads()


def _archive_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("jupyter-publish-")]


def test_a_post_archive_upload_is_sent_once_and_says_so(request, tmp_path):
    store = Store("http", request)
    src = _tree(tmp_path)
    with FaultProxy(store.port) as proxy:
        to, _ = store.destination(proxy)
        proxy.add(Fault("cut", direction="up", at=100_000))
        with pytest.raises(TransientError) as info:
            jp.publish(src, to, archive=True, method="POST")
        assert proxy.connections == 1
    message = str(info.value)
    assert "\n" not in message and "POST" in message and "sent once" in message, message
