"""The streaming hasher: the same digest in the caller's thread or a worker thread."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from jupyter_publish.cid import cid_of
from jupyter_publish.hashing import ContentHasher, HashingReader, hash_file


@pytest.mark.parametrize("cid_version", [0, 1])
def test_background_and_inline_hashing_agree(tmp_path, cid_version):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    inline, background = ContentHasher(cid_version), ContentHasher(cid_version, background=True)
    buffer = bytearray(100_003)
    with open(path, "rb") as handle:
        while count := handle.readinto(buffer):
            inline.update(memoryview(buffer)[:count])
            background.update(memoryview(buffer)[:count])  # the buffer is reused at once
    assert inline.finish() == background.finish() == hash_file(str(path), cid_version)
    assert background.finish().sha256 == hashlib.sha256(data).hexdigest()
    assert background.finish().cid == cid_of(path, cid_version)


def test_reader_hashes_exactly_what_was_read():
    data = os.urandom(2_000_000)
    hasher = ContentHasher(background=True)
    reader = HashingReader(io.BytesIO(data), hasher, len(data))
    assert reader.read(10) + reader.read() == data
    assert hasher.finish().sha256 == hashlib.sha256(data).hexdigest()
    assert reader.bytes_read == len(data)


def test_abandon_stops_the_worker():
    hasher = ContentHasher(background=True)
    hasher.update(b"x" * 1000)
    hasher.abandon()
    hasher.abandon()  # idempotent
    assert not any(t.name == "jupyter-publish-hash" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="abandoned"):
        hasher.finish()
