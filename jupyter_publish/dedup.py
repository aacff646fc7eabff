"""Send only new bytes: a server-side copy of an object the store already holds.

Publishing the same results twice (re-running a notebook, or publishing a file that an
earlier job already sent) should not send the same bytes again. When a store can copy an
object it holds (:class:`~jupyter_publish.backends.base.CopiesExisting`: S3 ``CopyObject``),
the publisher decides here, in three steps that cost nothing when there is nothing to reuse:

1. **candidates**, chosen cheaply: the ledger's objects of the same size in the same
   bucket at the same endpoint (for an archive: earlier archives of the same file names
   and sizes). No candidate, no extra work: the upload runs as before.
2. **proof**, local: the bytes are hashed through the core's
   :class:`~jupyter_publish.hashing.ContentHasher` (an archive is made and hashed, not
   sent). Only a candidate whose recorded sha256 equals the local one is kept. This pass
   also gives the sha256 and CID the result records, so a copy's result is as complete as
   an upload's.
3. **copy**: the store confirms the object still holds those bytes (S3: a HEAD, its size
   and checksum) and copies it. A refused, vanished or changed source returns None, and
   the bytes are uploaded as if no candidate had been found (the counts say which).

:func:`file_candidates` and :func:`archive_candidates` are the one place candidates come
from; a shared catalog's records join the ledger's there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .backends.base import CopiesExisting, CopyProof, CopyProver, ObjectBackend, StoredObject, Upload
from .hashing import ContentHasher, Digest
from .sizes import CHUNK, MiB
from .transfer import check_cancelled

if TYPE_CHECKING:
    from .backends.base import StoreOutcome
    from .bundle import Bundle
    from .ledger import Ledger
    from .results import PublishedResult

MIN_COPY_BYTES = 1 * MiB
"""Smaller objects are uploaded: a HEAD and a copy cost two requests, one PUT sends them."""
MAX_TRIES = 3
"""Proven candidates asked per object before uploading it: a refusal (credentials that
may only write) would refuse the next one too, each at the cost of a request."""


@dataclass(frozen=True)
class Candidate:
    """An object a store holds whose recorded bytes may equal ours."""

    location: str
    """Where it is (``s3://BUCKET/KEY[?versionId=V]``)."""
    size: int
    sha256: str
    job_id: str | None = None
    own: bool = False
    """Recorded by this ledger (our own upload or copy), not by a shared catalog's record:
    only then may a sha256 in the object's metadata stand in for the store's checksum
    (anyone who may write to the bucket can write metadata, and a record)."""


# -- 1. candidates ---------------------------------------------------------------------------


def _same(recorded: Any, wanted: Any) -> bool:
    """Two recorded option values (endpoints) name the same place: case and a trailing
    slash aside; empty and None both mean the default (AWS)."""
    return str(recorded or "").rstrip("/").lower() == str(wanted or "").rstrip("/").lower()


def _in_scope(params: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(_same(params.get(key), value) for key, value in wanted.items())


def file_candidates(
    ledger: Ledger,
    backend: CopiesExisting,
    sizes: Iterable[int],
    records: Iterable[PublishedResult] = (),
) -> dict[int, list[Candidate]]:
    """Objects the backend could copy, by size: published in its bucket at its endpoint,
    as the ledger says (an indexed lookup per size) and as ``records`` say (a shared
    catalog's cached job records, say)."""
    prefix, wanted = backend.copy_scope()
    sizes = set(sizes)
    found: dict[int, list[Candidate]] = {}
    for size, rows in ledger.stored_copies(sizes, prefix).items():
        kept = [
            Candidate(r["location"], size, r["sha256"], r["job_id"], own=True)
            for r in rows
            if _in_scope(r["params"], wanted)
        ]
        if kept:
            found[size] = kept
    for size, more in files_in(records, sizes, prefix, wanted).items():
        known = {c.location for c in found.get(size, [])}
        found.setdefault(size, []).extend(c for c in more if c.location not in known)
    return found


def files_in(
    results: Iterable[PublishedResult], sizes: set[int], prefix: str, wanted: dict[str, Any]
) -> dict[int, list[Candidate]]:
    """The stored objects among ``results`` (job records) of one of ``sizes`` under
    ``prefix`` at the place ``wanted`` names: files of plain publishes, and archives."""
    found: dict[int, list[Candidate]] = {}
    for result in results:
        if result.status != "published" or not _in_scope(result.params, wanted):
            continue
        for record in result.all_records():
            location = record.location or ""
            if record.kind == "dir" or record.size not in sizes or not record.sha256:
                continue
            if location.startswith(prefix) and "#" not in location:  # never an archive member
                found.setdefault(record.size, []).append(
                    Candidate(location, record.size, record.sha256, result.job_id)
                )
    return found


def archive_candidates(
    ledger: Ledger,
    backend: CopiesExisting,
    bundle: Bundle,
    suffix: str,
    records: Iterable[PublishedResult] = (),
) -> list[Candidate]:
    """Archives the backend could copy: published in its bucket at its endpoint, of the
    same file names and sizes (mtimes aside: a notebook run again rewrites its outputs),
    as the ledger and ``records`` (a catalog's cached job records) say."""
    prefix, wanted = backend.copy_scope()
    results = ledger.archive_results(len(bundle.files), bundle.total_size, prefix)
    found = [replace(c, own=True) for c in archives_in(results, bundle, suffix, prefix, wanted)]
    found += archives_in(records, bundle, suffix, prefix, wanted)
    unique = {c.location: c for c in reversed(found)}  # the first (newest) of each place
    return [c for c in found if unique[c.location] is c]


def archives_in(
    results: Iterable[PublishedResult], bundle: Bundle, suffix: str, prefix: str, wanted: dict[str, Any]
) -> list[Candidate]:
    """The archives among ``results`` (ledger or catalog records) that may hold ``bundle``."""
    from .archive import SUFFIX

    files = sorted((f.name, f.size) for f in bundle.files)
    found = []
    for result in results:
        archive = result.archive
        if archive is None or not archive.sha256 or not archive.location:
            continue
        if not archive.location.startswith(prefix) or not _in_scope(result.params, wanted):
            continue
        other = next((s for s in SUFFIX.values() if s and archive.path.endswith(s)), suffix)
        if other != suffix:  # another compression: other bytes
            continue
        if sorted((f.path, f.size) for f in result.files if f.kind == "file") != files:
            continue
        found.append(Candidate(archive.location, archive.size, archive.sha256, result.job_id))
    return found


# -- 2. proof --------------------------------------------------------------------------------


def prove_file(path: Path, size: int, cid_version: int, prover: CopyProver) -> Digest | None:
    """The file's digest (sha256, CID) and the store's proof facts, in one local pass.

    None if the file changed meanwhile (its size or mtime): then it is uploaded, and the
    upload's own checks decide."""
    before = os.stat(path)
    hasher = ContentHasher(cid_version, background=True)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                check_cancelled()
                hasher.update(view[:count])
                prover.update(view[:count])
    except BaseException:
        hasher.abandon()
        raise
    digest = hasher.finish()
    after = os.stat(path)
    same = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
    return digest if same and digest.size == size == after.st_size else None


@dataclass
class ArchiveCopy:
    """An archive stored by a copy: where, and the digests a made archive would give."""

    stored: StoredObject
    digest: Digest
    """The archive's own size, sha256 and CID."""
    files: dict[str, Digest]
    """Each file's, as the archive stream computed them."""


def copy_archive(
    backend: CopiesExisting,
    candidates: Sequence[Candidate],
    bundle: Bundle,
    compression: str,
    cid_version: int,
    upload: Upload,
    progress: Callable[[int], None] | None = None,
) -> ArchiveCopy | None:
    """Make the archive locally (deterministic: the same files give the same bytes), hash
    it, and copy the first candidate holding exactly those bytes; None: upload it."""
    from .archive import ArchiveStream

    hasher = ContentHasher(cid_version, background=True)
    prover = backend.copy_prover(None)
    stream = ArchiveStream(bundle, compression=compression, cid_version=cid_version, progress=progress)
    try:
        while data := stream.read(CHUNK):
            check_cancelled()
            hasher.update(data)
            prover.update(data)
        files = dict(stream.digests)
    except BaseException:
        hasher.abandon()
        raise
    finally:
        stream.close()
    digest = hasher.finish()
    proof = CopyProof(digest.size, digest.sha256, prover.facts())
    same = [c for c in candidates if (c.size, c.sha256) == (digest.size, digest.sha256)]
    for candidate in same[:MAX_TRIES]:
        stored = backend.copy_existing(upload, candidate.location, replace(proof, metadata=candidate.own))
        if stored is not None:
            return ArchiveCopy(stored, digest, files)
    return None


# -- 3. copy, else upload (plain publishes) ----------------------------------------------------


class CopyingBackend:
    """The publish's backend, putting an upload as a copy of an identical stored object
    when one is proven, else as the backend itself would (every other call goes through).

    ``copied(name, digest)`` is told of each copy: the core records the digest the proof
    pass computed as if the upload's reader had.
    """

    scheme: ClassVar[str] = ""
    """Never registered: only the publisher's scheduler sees it (``backend.scheme`` is the store's)."""

    def __init__(
        self,
        backend: ObjectBackend,
        candidates: dict[int, list[Candidate]],
        cid_version: int,
        copied: Callable[[str, Digest], None],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        assert isinstance(backend, CopiesExisting)
        self.backend = backend
        self._copier: CopiesExisting = backend
        self._candidates = candidates
        self._cid_version = cid_version
        self._copied = copied
        self._progress = progress
        # What the core's scheduler asks of a backend (transfer.store_all).
        for name in ("parallel_above", "max_concurrency_hint"):
            if hasattr(backend, name):
                setattr(self, name, getattr(backend, name))

    def put(self, upload: Upload, progress: Callable[[int], None] | None = None) -> StoredObject:
        stored = self._copy(upload)
        return stored if stored is not None else self.backend.put(upload, progress)

    def _copy(self, upload: Upload) -> StoredObject | None:
        candidates = self._candidates.get(upload.size or -1)
        if not candidates or upload.path is None or upload.size is None or upload.size < MIN_COPY_BYTES:
            return None
        prover = self._copier.copy_prover(upload.size)
        digest = prove_file(upload.path, upload.size, self._cid_version, prover)
        if digest is None:
            return None
        proof = CopyProof(digest.size, digest.sha256, prover.facts())
        for candidate in [c for c in candidates if c.sha256 == digest.sha256][:MAX_TRIES]:
            stored = self._copier.copy_existing(
                upload, candidate.location, replace(proof, metadata=candidate.own)
            )
            if stored is not None:
                self._copied(upload.name, digest)
                if self._progress is not None:  # the bar counts the bytes published
                    self._progress(upload.size)
                return stored
        return None

    def outcome(self, objects: Sequence[StoredObject]) -> StoreOutcome:
        return self.backend.outcome(objects)

    def list(self, ref: str) -> Any:
        return self.backend.list(ref)

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Any:
        return self.backend.read(location, offset, length)

    def close(self) -> None:
        self.backend.close()


def copying(
    backend: ObjectBackend,
    ledger: Ledger,
    uploads: Sequence[Upload],
    cid_version: int,
    copied: Callable[[str, Digest], None],
    progress: Callable[[int], None] | None = None,
    records: Callable[[Collection[int]], Iterable[PublishedResult]] = lambda sizes: (),
) -> ObjectBackend:
    """``backend``, or a :class:`CopyingBackend` around it when some upload has candidates
    (in the ledger, or among ``records(sizes)``: a catalog's cached job records that list
    a file of one of those sizes, asked only when some upload is large enough to copy)."""
    if not isinstance(backend, CopiesExisting):
        return backend
    sizes = {
        u.size for u in uploads if u.path is not None and u.size is not None and u.size >= MIN_COPY_BYTES
    }
    candidates = file_candidates(ledger, backend, sizes, records(sizes)) if sizes else {}
    if not candidates:
        return backend
    return CopyingBackend(backend, candidates, cid_version, copied, progress)
