"""One streaming pass that yields a file's size, sha256 and IPFS CID together.

Every byte a backend uploads goes through a :class:`HashingReader`, so checksums are
computed while the upload runs (no second read of the data) and whatever the store
received is exactly what the manifest describes.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .cid import FileCidBuilder

CHUNK = 1024 * 1024
QUEUE_CHUNKS = 16
"""Chunks waiting for the hash worker: at most a few MiB in memory."""


@dataclass(frozen=True)
class Digest:
    """What one pass over some bytes tells us."""

    size: int
    sha256: str
    cid: str
    tsize: int
    """The UnixFS cumulative size, needed to build the folder's directory CID."""


class ContentHasher:
    """sha256 and the UnixFS CID of a byte stream, fed in any chunk sizes.

    With ``background=True`` the hashing runs in a worker thread fed through a small
    bounded queue, so it overlaps the network I/O of the thread that moves the bytes
    (hashlib releases the GIL); memory stays bounded by the queue.
    """

    def __init__(self, cid_version: int = 0, *, background: bool = False) -> None:
        self._sha = hashlib.sha256()
        self._cid = FileCidBuilder(cid_version)
        self.size = 0
        self._digest: Digest | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._worker: threading.Thread | None = None
        self._failure: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=QUEUE_CHUNKS)
            self._worker = threading.Thread(target=self._drain, name="jupyter-publish-hash", daemon=True)
            self._worker.start()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._digest is not None:
            raise RuntimeError("hasher already finished")
        self.size += len(data)
        if self._queue is None:
            self._hash(data)
        else:
            if self._failure is not None:
                raise self._failure
            self._queue.put(data if isinstance(data, bytes) else bytes(data))  # caller may reuse it

    def _hash(self, data: bytes | bytearray | memoryview) -> None:
        self._sha.update(data)
        self._cid.update(data)

    def _drain(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._hash(data)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._failure = exc

    def finish(self) -> Digest:
        if self._digest is None:
            if self._queue is not None and self._worker is not None:
                self._queue.put(None)
                self._worker.join()
                if self._failure is not None:
                    raise self._failure
            node = self._cid.finish()
            self._digest = Digest(self.size, self._sha.hexdigest(), node.cid, node.tsize)
        return self._digest

    def abandon(self) -> None:
        """Stop the worker without a result (the transfer failed); idempotent."""
        if self._queue is not None and self._worker is not None and self._worker.is_alive():
            self._failure = self._failure or RuntimeError("the transfer was abandoned")
            self._queue.put(None)
            self._worker.join()

    @property
    def finished(self) -> bool:
        return self._digest is not None


class HashingReader(io.RawIOBase):
    """A read-only, non-seekable view of ``source`` that hashes what is read.

    Non-seekable on purpose: boto3 and httpx then read it once, in order, and keep
    their own buffers for retries, so the hash covers exactly the bytes sent.
    """

    def __init__(
        self,
        source: BinaryIO,
        hasher: ContentHasher | None,
        expected_size: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self._source = source
        self.hasher = hasher
        self.expected_size = expected_size
        self.bytes_read = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        count = self._source.readinto(view)  # type: ignore[attr-defined]
        if not count:
            return 0
        self._account(view[:count])
        return count

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size is not None and size >= 0 else -1)
        if not data:
            return b""
        self._account(data)
        return data

    def _account(self, data: bytes | memoryview) -> None:
        if self.hasher is not None:
            self.hasher.update(data)
        self.bytes_read += len(data)
        if self._progress is not None:
            self._progress(len(data))

    def close(self) -> None:
        try:
            self._source.close()
        finally:
            super().close()


def hash_file(path: str, cid_version: int = 0) -> Digest:
    """Hash a file on disk in one pass (used to verify downloads and local blobs)."""
    hasher = ContentHasher(cid_version)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            hasher.update(view[:count])
    return hasher.finish()
