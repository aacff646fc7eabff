"""A file that changes size during its upload (issue 9, item 7): one line on every
backend, a ``failed`` job, and nothing truncated left at the key."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest
from rel_stores import MiB

import jupyter_publish as jp
import jupyter_publish.publisher as publisher
from jupyter_publish.ledger import Ledger


class _Changing:
    """A file reader that grows or shrinks the file once a first chunk has been read,
    as a notebook still writing its output would."""

    def __init__(self, path, change):
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._path, self._change, self._done = path, change, False

    def _after_first_read(self):
        if self._done:
            return
        self._done = True
        with open(self._path, "r+b") as handle:
            if self._change == "grow":
                handle.seek(0, 2)
                handle.write(os.urandom(MiB))
            else:
                handle.truncate(os.path.getsize(self._path) // 2)

    def read(self, size=-1):
        data = self._file.read(size)
        self._after_first_read()
        return data

    def readinto(self, buffer):
        count = self._file.readinto(buffer)
        self._after_first_read()
        return count

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def changing(monkeypatch, tmp_path):
    """A folder whose ``big.bin`` changes size (``request.param``) while it is read."""

    def make(size, change):
        src = tmp_path / "src"
        src.mkdir()
        target = src / "big.bin"
        target.write_bytes(os.urandom(size))
        original = publisher._open_source

        def opener(path):
            return _Changing(path, change) if path == target else original(path)

        monkeypatch.setattr(publisher, "_open_source", opener)
        return src

    return make


def _assert_failed_in_one_line(info):
    message = str(info.value)
    assert "\n" not in message and "big.bin" in message, message
    assert "changed" in message or "grew" in message or "shrank" in message, message
    [job] = Ledger().jobs()
    assert job["status"] == "failed"


CHANGES = ["grow", "shrink"]
SIZES = {"single": 3 * MiB, "multipart": 20 * MiB}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("shape", SIZES)
def test_s3_keeps_no_object(s3_env, s3_bucket, changing, change, shape):
    src = changing(SIZES[shape], change)
    with pytest.raises(jp.PublishError) as info:
        jp.publish(src, f"s3://{s3_bucket}/run/", archive=False, endpoint=s3_env.endpoint)
    _assert_failed_in_one_line(info)
    client = s3_env.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert "run/big.bin" not in keys, keys
    assert not client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_http_keeps_no_file(nginx_dav, changing, change, method):
    src = changing(3 * MiB, change)
    started = time.time() - 1
    folder = f"run-{change}-{method}-{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    base = f"{nginx_dav.base_url}/{folder}/"
    with pytest.raises(jp.PublishError) as info:
        jp.publish(src, base, archive=False, method=method)
    _assert_failed_in_one_line(info)
    assert httpx.get(base + "big.bin").status_code == 404
    # Whatever the method, nothing of this upload is kept anywhere under the server's
    # root (a POST form upload lands where the server's script puts it).
    left = [
        p for p in nginx_dav.root.rglob("*")
        if p.is_file() and "big.bin" in p.name and p.stat().st_mtime >= started
    ]  # fmt: skip
    assert not left, left


@pytest.mark.parametrize("change", CHANGES)
def test_ipfs_fails_in_one_line(ipfs_env, changing, change):
    src = changing(3 * MiB, change)
    with pytest.raises(jp.PublishError) as info:
        jp.publish(src, "ipfs://", archive=False)
    _assert_failed_in_one_line(info)


@pytest.mark.parametrize("change", CHANGES)
def test_local_records_no_job(changing, change):
    src = changing(3 * MiB, change)
    with pytest.raises(jp.PublishError) as info:
        jp.publish(src, "local", archive=False)
    _assert_failed_in_one_line(info)
    from jupyter_publish.backends.local import store_root

    assert not list((store_root() / "jobs").glob("*.json"))
