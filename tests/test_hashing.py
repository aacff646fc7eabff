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


def test_abandon_returns_when_a_signal_interrupted_the_seal() -> None:
    """SIGTERM's Terminated can land inside _seal after ``_sealed`` is set and before the end
    marker is queued; abandon() must still stop the worker (it used to wait forever)."""
    from jupyter_publish.hashing import INLINE_BYTES

    hasher = ContentHasher(background=True)
    hasher.update(b"x" * (INLINE_BYTES + 1))  # past the inline size: the worker runs
    assert hasher._worker is not None
    hasher._sealed = True  # as if interrupted between setting the flag and queueing the marker
    done = threading.Event()
    thread = threading.Thread(target=lambda: (hasher.abandon(), done.set()), daemon=True)
    thread.start()
    assert done.wait(5), "abandon() waited forever for a worker that was never told to stop"
