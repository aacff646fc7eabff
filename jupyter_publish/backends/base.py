"""The small protocol every storage backend speaks.

A backend only moves bytes. Hashing, CIDs, the manifest, the ledger, temporary files,
verification and progress all live in the core, so that a new backend is one short
module: ``publish`` reads each :class:`Upload` to its end (the reader hashes as it
goes), ``list`` expands a reference into objects, and ``read`` streams one object's
bytes from an offset (for resumable, verified downloads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, Protocol

ProgressCallback = Callable[[int], None]
"""Called with a number of bytes just transferred."""


@dataclass
class Upload:
    """One object to store: ``name`` is its path relative to the destination key/prefix.

    ``open()`` returns a fresh binary reader; the core wraps it so that reading it to the
    end also computes the object's sha256 and CID. A backend must read it exactly once,
    sequentially, to EOF (retries of a part must come from the backend's own buffer).
    """

    name: str
    size: int
    open: Callable[[], BinaryIO]
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    """Known up front for archives (written to a temp file first), else None."""


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


class Backend(Protocol):
    """A storage backend, registered by URI scheme in :mod:`jupyter_publish.backends`."""

    scheme: ClassVar[str]

    def publish(self, uploads: Sequence[Upload], progress: ProgressCallback | None = None) -> StoreOutcome:
        """Store every upload under this backend's destination; raise PublishError on failure."""
        ...

    def list(self, ref: str) -> list[RemoteObject]:
        """Expand ``ref`` (an object, a prefix, a glob, a directory CID) into objects."""
        ...

    def read(self, location: str, offset: int = 0) -> Iterator[bytes]:
        """Stream the bytes of one object starting at ``offset``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
