"""One object from a store into a staging file, hashed in order, resumable.

Small objects are one streamed read. A large object the store serves in byte ranges is
read as parallel 8 MiB ranged reads (what boto3's ``download_file`` and AWS's S3
guidelines do: one connection is capped, several are not); each range is written at
its offset, and the calling thread hashes the file in order as soon as the next range
is complete, re-reading it from the page cache, so memory stays at a few MiB whatever
the size. A marker file (kept apart from the downloads, so no object name can collide
with it) records how many bytes from the start are complete and hashed: an interrupted
fetch resumes from there. A store that ignores ranges, or an object longer than it was
said to be, ends the parallel path: the rest comes as one stream, checked by size.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from .errors import BackendError, IntegrityError, RangeIgnored
from .hashing import ContentHasher
from .retry import retrying
from .sizes import CHUNK
from .transfer import Cancelled, DaemonPool, cancel_scope, check_cancelled

RANGE_SIZE = 8 * 1024 * 1024
"""One ranged read: AWS suggests 8-16 MB, aligned with the multipart part size."""
RANGED_MIN = 2 * RANGE_SIZE
"""Objects from this size up are read in parallel ranges (when the store serves ranges)."""

Progress = Callable[[int], None] | None


class _Reader(Protocol):
    """All a download needs of a backend: its ``read`` (see ``backends.base``)."""

    def read(self, location: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...


def download(
    backend: _Reader,
    location: str,
    part: Path,
    hasher: ContentHasher,
    *,
    marker: Path,
    size: int | None,
    resumable: bool,
    ranged: bool,
    concurrency: int,
    progress: Progress = None,
) -> None:
    """Fill ``part`` with the object at ``location``, feeding ``hasher`` every byte in order.

    ``resumable``: the content can be verified at the end, so bytes left by an earlier
    try may be kept (never splice unverifiable bytes together).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = _resume_point(part, marker, size) if resumable else 0
    if offset:
        _rehash(part, hasher, offset)
    else:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    marker.unlink(missing_ok=True)
    parallel = ranged and concurrency > 1 and hasattr(os, "pwrite")  # pwrite: not on Windows
    if parallel and size is not None and size - offset >= RANGED_MIN:
        try:
            _ranged(backend, location, part, marker, hasher, offset, size, concurrency, progress)
            return
        except RangeIgnored:
            offset = hasher.size  # what the ranged reads completed and hashed, in order
        marker.unlink(missing_ok=True)
    _sequential(backend, location, part, hasher, offset, progress)


def _resume_point(part: Path, marker: Path, size: int | None) -> int:
    """Bytes at the start of ``part`` that a previous try completed in order."""
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        return 0
    if marker.exists():  # a ranged try: only the prefix it hashed is known to be whole
        try:
            have = max(0, min(have, int(marker.read_text() or 0)))
        except (ValueError, OSError):
            have = 0
    if size is None or have >= size:
        return 0
    with open(part, "r+b") as handle:
        handle.truncate(have)
    return have


def _rehash(part: Path, hasher: ContentHasher, upto: int) -> None:
    with open(part, "rb") as handle:
        while upto > 0 and (chunk := handle.read(min(CHUNK, upto))):
            hasher.update(chunk)
            upto -= len(chunk)


def _sequential(
    backend: _Reader, location: str, part: Path, hasher: ContentHasher, offset: int, progress: Progress
) -> None:
    """One stream; after a transient fault, the next try resumes at the first byte missing
    (every byte is written and hashed once, whatever the number of tries)."""
    position = offset
    with open(part, "ab" if offset else "wb") as out:

        def attempt() -> None:
            nonlocal position
            for chunk in backend.read(location, position):
                check_cancelled()
                out.write(chunk)
                hasher.update(chunk)
                position += len(chunk)
                if progress:
                    progress(len(chunk))

        retrying(attempt)


class _Ranges:
    """Which ranges are on disk; the hashing thread waits here for the next one."""

    def __init__(self) -> None:
        self.done: set[int] = set()
        self.failure: BaseException | None = None
        self.cond = threading.Condition()

    def finish(self, start: int) -> None:
        with self.cond:
            self.done.add(start)
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.failure is None or isinstance(self.failure, Cancelled):
                self.failure = exc
            self.cond.notify_all()

    def wait_for(self, start: int) -> None:
        with self.cond:
            while start not in self.done:
                if self.failure is not None:
                    raise self.failure
                self.cond.wait(0.25)  # wakes for Ctrl-C too
                check_cancelled()


def _ranged(
    backend: _Reader,
    location: str,
    part: Path,
    marker: Path,
    hasher: ContentHasher,
    offset: int,
    size: int,
    concurrency: int,
    progress: Progress,
) -> None:
    starts = list(range(offset, size, RANGE_SIZE))
    ranges = _Ranges()
    stop = threading.Event()
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    writing = threading.Lock()
    closed = False
    """Set (under ``writing``) once ``fd`` is closed: a worker left behind by a cancel
    must never write through a descriptor number the process may have reused."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    last = starts[-1]
    answered = threading.Event()
    """The first range's answer arrived: only then do the others start (a store that
    ignores ranges would otherwise send the whole object once per connection)."""

    def fetch_range(start: int) -> None:
        with cancel_scope(stop):
            try:
                _read_range(start)
                ranges.finish(start)
            except BaseException as exc:
                ranges.fail(exc)
                raise
            finally:
                answered.set()

    def _read_range(start: int) -> None:
        position = start
        expected = min(RANGE_SIZE, size - start)

        def attempt() -> None:
            nonlocal position
            # The last range is open-ended: an object that grew since it was listed
            # must not be cut silently at the length it had then.
            length = start + expected - position if start != last else None
            for chunk in backend.read(location, position, length):
                answered.set()
                check_cancelled()
                if position + len(chunk) > start + expected:
                    raise IntegrityError(f"size of {location}", f"{size} bytes", "more bytes")
                with writing:
                    if closed:
                        raise Cancelled("the download was stopped")
                    os.pwrite(fd, chunk, position)
                position += len(chunk)
                if progress:
                    progress(len(chunk))

        # A fault resumes the range at its first missing byte (a retry never re-sends it all).
        retrying(attempt)
        if position != start + expected:
            raise BackendError(
                f"{location}: range at {start} ended after {position - start} of {expected} bytes"
            )

    hashed = offset
    # Before any range lands past the hashed prefix: a kill from here on leaves a marker
    # that says how much of the file is whole, so a resume never hashes holes as data.
    marker.write_text(str(hashed))
    pool = DaemonPool(concurrency, "jupyter-publish-range", stop)
    try:
        pool.submit(fetch_range, starts[0])
        while not answered.wait(0.25):  # wakes for Ctrl-C too
            check_cancelled()
        if ranges.failure is not None:
            raise ranges.failure
        for start in starts[1:]:
            pool.submit(fetch_range, start)
        for start in starts:
            ranges.wait_for(start)
            end = min(start + RANGE_SIZE, size)
            while hashed < end:
                chunk = os.pread(fd, min(CHUNK, end - hashed), hashed)
                if not chunk:
                    raise OSError(f"{part} is shorter than the bytes written to it")
                hasher.update(chunk)
                hashed += len(chunk)
            marker.write_text(str(hashed))
    except BaseException:
        # Workers stuck in a stalled read are not waited for beyond a short grace.
        pool.shutdown(cancel=True)
        with writing:
            closed = True
            os.ftruncate(fd, hashed)  # keep only the whole, hashed prefix for a resume
            os.close(fd)
        raise
    pool.shutdown()
    with writing:
        closed = True
        os.close(fd)
    marker.unlink(missing_ok=True)
