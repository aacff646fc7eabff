"""One streaming pass that yields a file's size, sha256 and IPFS CID together.

Every byte a backend uploads goes through a :class:`HashingReader`, so checksums are
computed while the upload runs (no second read of the data) and whatever the store
received is exactly what the manifest describes.
"""

from __future__ import annotations

import hashlib
import io
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from .cid import FileCidBuilder, read_pieces
from .sizes import CHUNK
from .transfer import check_cancelled

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
"""A sha256 as we record it: 64 lowercase hex digits (checked in documents a store holds)."""

QUEUE_BYTES = 8 * CHUNK
"""Bytes waiting for the hash worker, whatever the chunk size (S3 parts are 8 MiB):
a lagging worker slows the reader down instead of holding parts in memory."""
INLINE_BYTES = CHUNK
"""A background hasher hashes this much in the caller's thread before starting its worker."""


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
    (hashlib releases the GIL); memory stays bounded by the queue. The worker starts only
    once more than :data:`INLINE_BYTES` arrive: for a small file a thread costs far more
    than hashing it, and a folder of 20,000 small files must not start 20,000 threads.

    A finished (or abandoned) hasher keeps only its :class:`Digest`, so holding one per
    file of a large folder is cheap.
    """

    def __init__(self, cid_version: int = 0, *, background: bool = False, cid: bool = True) -> None:
        self._sha: hashlib._Hash | None = hashlib.sha256()
        # cid=False: sha256 only (an archive's own bytes, checked by sha256 alone).
        self._cid: FileCidBuilder | None = FileCidBuilder(cid_version) if cid else None
        self._queued = 0
        self._room = threading.Condition()
        self.size = 0
        self._background = background
        self._sealed = False  # no more data will come: the digest is (being) computed
        self._digest: Digest | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._worker: threading.Thread | None = None
        self._failure: BaseException | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._failure is not None:  # the worker failed, or the transfer was abandoned
            raise self._failure
        if self._sealed:
            raise RuntimeError("hasher already finished")
        self.size += len(data)
        if self._queue is None:
            if not self._background or self.size <= INLINE_BYTES:
                self._hash(data)
                return
            self._start_worker()
            assert self._queue is not None
        with self._room:
            while self._queued and self._queued + len(data) > QUEUE_BYTES and self._failure is None:
                self._room.wait(0.25)
            self._queued += len(data)
        self._queue.put(data if isinstance(data, bytes) else bytes(data))  # caller may reuse it

    def _start_worker(self) -> None:
        self._queue = queue.Queue()  # bounded in bytes by update()
        self._worker = threading.Thread(target=self._drain, name="jupyter-publish-hash", daemon=True)
        self._worker.start()

    def _hash(self, data: bytes | bytearray | memoryview) -> None:
        assert self._sha is not None
        self._sha.update(data)
        if self._cid is not None:
            self._cid.update(data)

    def _drain(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._hash(data)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._failure = exc
            with self._room:  # counted until hashed: the bound covers the chunk in hand too
                self._queued -= len(data)
                self._room.notify()
        if self._failure is None:
            try:
                self._conclude()
            except BaseException as exc:
                self._failure = exc
        self._release()

    def _conclude(self) -> None:
        assert self._sha is not None
        if self._cid is None:
            self._digest = Digest(self.size, self._sha.hexdigest(), "", 0)
            return
        node = self._cid.finish()
        self._digest = Digest(self.size, self._sha.hexdigest(), node.cid, node.tsize)

    def _release(self) -> None:
        """Drop the hash states (and the CID builder's chunk buffer)."""
        self._sha = self._cid = None

    def _seal(self) -> None:
        """No more data: compute the digest now, or let the worker do it once its queue drains.

        Sealing does not wait for the worker, so a reader at EOF can seal without
        stalling the upload; :meth:`finish` waits.
        """
        if self._sealed:
            return
        self._sealed = True
        if self._queue is not None:
            self._queue.put(None)
        elif self._failure is None:
            self._conclude()
            self._release()

    def finish(self) -> Digest:
        """The digest (idempotent); waits for the worker, re-raises its failure."""
        self._seal()
        if self._worker is not None:
            self._worker.join()
            self._worker = self._queue = None
        if self._failure is not None:
            raise self._failure
        assert self._digest is not None
        return self._digest

    def abandon(self) -> None:
        """Stop the worker without a result (the transfer failed); idempotent."""
        if self._sealed and self._worker is None:
            return
        if not self._sealed:
            self._failure = self._failure or RuntimeError("the transfer was abandoned")
            self._seal()
        if self._worker is not None:
            # The end marker again: a signal (SIGTERM's Terminated) landing inside _seal,
            # after _sealed was set, can leave it unqueued, and the join would wait forever.
            # The queue is unbounded and the worker stops at the first marker: a second one is harmless.
            if self._queue is not None:
                self._queue.put(None)
            self._worker.join()
            self._worker = self._queue = None
        self._release()

    @property
    def finished(self) -> bool:
        return self._digest is not None


class ByteSource(Protocol):
    """What a :class:`HashingReader` reads from: an open binary file, a ``BytesIO``, an
    :class:`~jupyter_publish.archive.ArchiveStream`, or a backend's own stream."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: WriteableBuffer, /) -> int | None: ...

    def close(self) -> None: ...


class HashingReader(io.RawIOBase):
    """A read-only, non-seekable view of ``source`` that hashes what is read.

    Non-seekable on purpose: boto3 and httpx then read it once, in order, and keep
    their own buffers for retries, so the hash covers exactly the bytes sent.
    """

    def __init__(
        self,
        source: ByteSource,
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

    def readinto(self, buffer: WriteableBuffer) -> int:
        check_cancelled()  # another transfer of the job failed: stop sending this one
        view = memoryview(buffer).cast("B")
        count = self._source.readinto(view)
        if not count:
            if len(view):  # a zero-length read says nothing about the end
                self._seal_if_complete()
            return 0
        self._account(view[:count])
        return count

    def read(self, size: int = -1) -> bytes:
        check_cancelled()
        data = self._source.read(size if size is not None and size >= 0 else -1)
        if not data:
            if size != 0:
                self._seal_if_complete()
            return b""
        self._account(data)
        return data

    def _account(self, data: bytes | memoryview) -> None:
        # Bytes after a sealed end (the file grew) are only counted: the size check fails.
        if self.hasher is not None and not self.hasher._sealed:
            self.hasher.update(data)
        self.bytes_read += len(data)
        if self._progress is not None:
            self._progress(len(data))

    def _seal_if_complete(self) -> None:
        """All expected bytes were read: let the hasher finish and free its buffers now.

        A publish may hold one reader per file until the end; a sealed hasher keeps
        only its digest instead of a chunk buffer and a worker thread. A negative
        ``expected_size`` means unknown: then the source's end is the end.
        """
        if self.hasher is not None and (self.expected_size < 0 or self.bytes_read == self.expected_size):
            self.hasher._seal()

    def close(self) -> None:
        try:
            if not self.closed and self.bytes_read == self.expected_size:
                self._seal_if_complete()
            self._source.close()
        finally:
            super().close()


def hash_file(path: str, cid_version: int = 0) -> Digest:
    """Hash a file on disk in one pass (used to verify downloads and local blobs)."""
    hasher = ContentHasher(cid_version)
    for piece in read_pieces(path, CHUNK):
        hasher.update(piece)
    return hasher.finish()
