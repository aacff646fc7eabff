"""Retrying idempotent transfers: bounded exponential backoff with jitter, cancel-aware.

A backend classifies its client's faults (a dropped or reset connection, a short body, a
5xx, no byte for the idle limit) as :class:`~jupyter_publish.errors.TransientError`; the
code that drives a transfer (:mod:`jupyter_publish.download` for every read, a backend's
own upload) runs each attempt through :func:`retrying`, which waits a little longer
after each fault and gives up after ``config.retries()`` extra attempts with the last
fault's one line. A fault that the client library has already retried on its own
(botocore does) is marked :func:`exhausted` and is not retried once more.

An upload read through the core's hashing reader must be read exactly once;
:class:`Replay` lets a retried upload send the same bytes again without hashing them
twice: the prefix already sent is re-read from the file (or, for an archive streamed as
it is made, read from the archive made again) and checked against the digest of what was
sent, then the rest comes from the hashing reader as before.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from . import config
from .errors import SourceError, StalledError, TransientError
from .transfer import check_cancelled, pause

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

BACKOFF_BASE = 0.25
"""Seconds before the first retry (then doubled each time, with jitter)."""
BACKOFF_CAP = 4.0
"""The longest wait between two attempts."""
_EXHAUSTED = "_jupyter_publish_exhausted"


def backoff(attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th fault (0-based): half fixed, half random,
    so many clients cut by the same fault do not come back in step."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def exhausted(error: E, attempts: int | None = None) -> E:
    """Mark ``error`` as already retried (by the client library, ``attempts`` tries in all):
    :func:`retrying` reports it as it is."""
    setattr(error, _EXHAUSTED, True)
    if attempts and attempts > 1:
        error.args = (f"{error} (gave up after {attempts} attempts)",)
    return error


def reset_while_connecting(error: BaseException | None) -> bool:
    """Whether a failed connect was a reset (a restarting server, a full accept queue, a
    middlebox), which is worth another try, unlike a refused connection (nothing there)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConnectionResetError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


STALL_RETRIES = 1
"""A stall gets one fresh connection (a dead middlebox or a stuck socket), not more: with
the idle limit of 30 s a hung server ends the transfer within a minute of no progress."""


def retrying(action: Callable[[], T], *, retries: int | None = None) -> T:
    """``action()``, run again after each :class:`TransientError` up to ``retries`` more
    times (default ``config.retries()``), a stall at most :data:`STALL_RETRIES` times;
    the last fault is raised, saying how many tries."""
    extra = config.retries() if retries is None else retries
    attempt = stalls = 0
    while True:
        try:
            return action()
        except TransientError as exc:
            if isinstance(exc, StalledError):
                stalls += 1
            if attempt >= extra or stalls > STALL_RETRIES or getattr(exc, _EXHAUSTED, False):
                if attempt and not getattr(exc, _EXHAUSTED, False):
                    exc.args = (f"{exc} (gave up after {attempt + 1} attempts)",)
                raise
            pause(backoff(attempt))  # raises Cancelled / KeyboardInterrupt promptly
            attempt += 1


class Replay:
    """The bytes of one upload, sendable several times while the hashing reader is read once.

    Each call of :meth:`chunks` yields the whole content: first the prefix that earlier
    attempts already took from the hashing reader, then the rest from the reader. The
    prefix is re-read from ``path``, or from ``remake()`` (a stream made again, e.g. an
    archive), and checked against the sha256 of what was sent: a source that changed
    underneath fails in one line. With neither, only a first attempt that took nothing
    yet can be repeated: :meth:`replayable` says so.
    """

    def __init__(
        self,
        open_reader: Callable[[], BinaryIO],
        path: Path | None,
        name: str,
        remake: Callable[[], BinaryIO] | None = None,
    ) -> None:
        self._open = open_reader
        self._reader: BinaryIO | None = None
        self._path = path
        self._remake = remake
        self._name = name
        self._sent = 0
        self._sent_sha = hashlib.sha256()
        self._at_end = False

    @property
    def sent(self) -> int:
        """Bytes taken from the hashing reader (each counted once, however often sent)."""
        return self._sent

    def replayable(self) -> bool:
        """Whether another attempt can send exactly the same bytes again."""
        return self._sent == 0 or self._path is not None or self._remake is not None

    def chunks(self, size: int) -> Iterator[bytes]:
        """Every byte of the upload in order, in chunks of at most ``size``."""
        yield from self._prefix(size)
        if self._reader is None:
            self._reader = self._open()
        while not self._at_end:
            chunk = self._reader.read(size)
            if not chunk:
                self._at_end = True
                break
            self._sent += len(chunk)
            self._sent_sha.update(chunk)
            yield chunk

    def _prefix(self, size: int) -> Iterator[bytes]:
        if not self._sent:
            return
        if self._path is None and self._remake is None:
            raise SourceError(f"{self._name} cannot be sent again (it is a stream); publish again")
        again = hashlib.sha256()
        left = self._sent
        with self._again() as source:
            while left and (chunk := source.read(min(size, left))):
                check_cancelled()
                again.update(chunk)
                left -= len(chunk)
                yield chunk
        if left or again.digest() != self._sent_sha.digest():
            what = self._path if self._path is not None else f"a source of {self._name}"
            raise SourceError(f"{what} changed while it was being published; publish again")

    def _again(self) -> BinaryIO:
        """A file opened again; a stream made again (its own checks may fail first)."""
        if self._path is not None:
            return open(self._path, "rb")
        assert self._remake is not None
        return self._remake()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def stalled(server: str, what: str, limit: float | None = None) -> StalledError:
    """The one line for a transfer that moved no byte for the idle limit."""
    limit = config.idle_timeout() if limit is None else limit
    return StalledError(
        f"{what}: {server} moved no byte for {limit:g}s (the idle limit, "
        f"${config.IDLE_TIMEOUT_ENV}); check the server and the network, or raise the limit"
    )


def exactly(chunks: Iterable[bytes], size: int | None, name: str) -> Generator[bytes, None, None]:
    """``chunks`` if they add up to ``size`` (when known), else one line saying the file changed.

    The last chunk is held back until the end is confirmed, so a file that grew or shrank
    during the upload never completes the request: a server discards a body shorter than
    its Content-Length (or a multipart body without its end) and keeps nothing.
    """
    if size is None:
        yield from chunks
        return
    left, pending = size, b""
    for chunk in chunks:
        if len(chunk) > left:
            raise SourceError(f"{name} grew while it was being published; publish again")
        left -= len(chunk)
        if pending:
            yield pending
        pending = chunk
    if left:
        raise SourceError(f"{name} shrank while it was being published; publish again")
    if pending:
        yield pending
