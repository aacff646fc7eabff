"""The small, per-object protocol every storage backend speaks.

A backend only moves bytes, one object at a time. Hashing, CIDs, the manifest, the
ledger, concurrency, verification and progress all live in the core
(:mod:`jupyter_publish.transfer` schedules many objects at once), so a new backend is one
short module:

* :meth:`ObjectBackend.put` stores one :class:`Upload`, reading it once to its end (the
  reader hashes as it goes) and parallelising *inside* a large object if the store can
  (multipart parts); :meth:`ObjectBackend.outcome` then describes the whole publish.
* :meth:`ObjectBackend.list` expands a reference into objects; :meth:`ObjectBackend.read`
  streams one object's bytes, or one byte range of it (resumable, parallel ranged reads).

A store that must receive a whole publish in one request (IPFS ``add`` builds one folder)
implements :class:`BatchBackend` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

ProgressCallback = Callable[[int], None]
"""Called with a number of bytes just transferred (from any thread)."""


@dataclass
class Upload:
    """One object to store: ``name`` is its path relative to the destination key/prefix.

    ``open()`` returns a fresh binary reader; the core wraps it so that reading it to the
    end also computes the object's sha256 and CID. A backend must read it exactly once,
    sequentially, to EOF (retries of a part must come from the backend's own buffer).
    """

    name: str
    size: int | None
    """None for a stream whose length is known only at its end (an archive being made)."""
    open: Callable[[], BinaryIO]
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    """Known up front only when the bytes were hashed before the upload, else None."""
    path: Path | None = None
    """The regular file behind ``open()``, if any. A backend may re-read byte ranges of it
    to send (S3 parts, so as not to hold them in memory) after reading them through
    ``open()``, provided the store checks each range against the checksum of the bytes
    read (S3's ChecksumSHA256) and the file's size and mtime are unchanged at the end."""
    remake: Callable[[], BinaryIO] | None = None
    """For a stream (no ``path``): a fresh, unhashed reader of the same bytes from byte 0
    (the archive made again: it is deterministic), so that a retry can send the bytes
    already sent again; they are checked against the sha256 of what was sent."""


@dataclass
class StoredObject:
    """Where one uploaded object ended up, plus anything the store told us about it."""

    name: str
    location: str
    """A reference that ``read``/``fetch`` accept, e.g. ``s3://bucket/key``."""
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Store-specific facts: VersionID, ChecksumSHA256, CID, ETag…"""


@dataclass
class StoreOutcome:
    """What a backend reports after a successful publish."""

    type: str
    """Bacalhau's PublishedResult Type: ``local``, ``s3``, ``ipfs``, ``urlDownload``."""
    params: dict[str, Any]
    """Bacalhau-like Params (Bucket, Key, Endpoint, Region, CID, URL…)."""
    uri: str
    """One reference that fetches the whole result back."""
    objects: list[StoredObject]
    url: str | None = None
    """A link a person can open (presigned URL, gateway URL, download URL)."""


@dataclass
class RemoteObject:
    """One object found behind a reference, ready to be read."""

    name: str
    """Path relative to what was asked for (used to lay files out under ``dest``)."""
    location: str
    size: int | None = None
    sha256: str | None = None
    """A checksum the store itself vouches for (our metadata, a manifest), if any."""
    cid: str | None = None
    ranged: bool = False
    """The store serves byte ranges of it, so the core may read parts in parallel."""
    is_dir: bool = False
    """A folder of the published tree (no bytes to read): a fetch recreates it, empty or not."""


class _Reading(Protocol):
    scheme: ClassVar[str]

    def list(self, ref: str) -> list[RemoteObject]:
        """Expand ``ref`` (an object, a prefix, a glob, a directory CID) into objects."""
        ...

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the bytes of one object from ``offset`` (``length`` bytes, or to its end)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class ObjectBackend(_Reading, Protocol):
    """A store that takes objects one at a time; the core puts many at once."""

    def put(self, upload: Upload, progress: ProgressCallback | None = None) -> StoredObject:
        """Store one upload (thread-safe: called from several workers at once)."""
        ...

    def outcome(self, objects: Sequence[StoredObject]) -> StoreOutcome:
        """Describe the publish once every object is stored (may write an index)."""
        ...


@runtime_checkable
class BatchBackend(_Reading, Protocol):
    """A store that must receive a whole publish in one request (IPFS ``add``)."""

    def publish(self, uploads: Sequence[Upload], progress: ProgressCallback | None = None) -> StoreOutcome:
        """Store every upload in one go; raise PublishError on failure."""
        ...


Backend = ObjectBackend | BatchBackend
"""Either kind, as the registry hands them out."""
