"""A bundle as a deterministic archive stream, compressed on every core while it is read.

:class:`ArchiveStream` is a readable, non-seekable file of the archive's bytes, made
while the uploader reads it: no temporary file, and the upload starts at once. The tar
stream (PAX, the bundle's order, mtime 0, owner 0/"") is cut into fixed
:data:`BLOCK`-sized pieces, which a small thread pool compresses independently, pigz
style (zlib and zstd release the GIL); results are emitted in order. Block boundaries
depend only on the bytes, so the output is the same whatever the thread count or the
reader's timing: one gzip member or zstd frame per block, which ``gzip -d``, ``tar xzf``,
``zstd -d`` and Python read as one stream.

Each file's size, sha256 and CID are computed as it is read into the tar, so the sources
are read exactly once. Memory stays bounded: about ``(threads + 4) * 2 * BLOCK``.
"""

from __future__ import annotations

import contextlib
import enum
import io
import os
import queue
import struct
import sys
import tarfile
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from .errors import PublishError, SourceError
from .hashing import ContentHasher, Digest

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from .bundle import Bundle

__all__ = ["BLOCK", "COMPRESSIONS", "ArchiveStream", "load_zstd"]

BLOCK = 1024 * 1024
"""Uncompressed bytes per independently compressed block (a gzip member, a zstd frame)."""
COMPRESSIONS = ("gzip", "zstd", "none")
DEFAULT_LEVEL = {"gzip": 1, "zstd": 3}
"""gzip -1 is ~6x faster than -6 for ~10% more bytes; zstd -3 is its own default."""
SUFFIX = {"gzip": ".tar.gz", "zstd": ".tar.zst", "none": ".tar"}
CONTENT_TYPE = {"gzip": "application/gzip", "zstd": "application/zstd", "none": "application/x-tar"}

ARCHIVE_MTIME = 0
_TAR_BLOCK = tarfile.BLOCKSIZE
_TAR_RECORD = tarfile.RECORDSIZE
_ENCODING = tarfile.ENCODING  # what tarfile.open() writes with, as the pre-issue-8 tarfile archive did

# gzip: a block whose samples save less than this is stored, not deflated: deflating
# incompressible data runs at ~45 MB/s a core, storing it at memory speed.
_SAMPLE = 16 * 1024
_SAMPLES = 2
STORE_RATIO = 0.95
_STORED_MAX = 0xFFFF
_GZIP_OS = b"\xff"  # "unknown", as Python's GzipFile writes: the same bytes on every OS


def load_zstd() -> ModuleType:
    """The zstd module: stdlib ``compression.zstd`` (3.14+) or the ``backports.zstd`` wheel."""
    try:
        if sys.version_info >= (3, 14):
            from compression import zstd
        else:
            from backports import zstd
    except ImportError:
        raise PublishError("compression='zstd' needs: pip install 'jupyter-publish[zstd]'") from None
    return zstd


# --------------------------------------------------------------------------- tar headers


def _tarinfo(name: str, size: int, mode: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = size, mode, kind
    info.mtime, info.uid, info.gid, info.uname, info.gname = ARCHIVE_MTIME, 0, 0, "", ""
    return info


def tar_header(name: str, size: int, mode: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """The PAX header tarfile writes for this entry (what ``tarfile`` itself makes for this TarInfo)."""
    return _tarinfo(name, size, mode, kind).tobuf(tarfile.PAX_FORMAT, _ENCODING, "surrogateescape")


class _HeaderMaker:
    """Regular-file headers at a fraction of ``TarInfo.tobuf``'s cost, byte for byte the same.

    For a short ASCII name and a size that fits ustar, tarfile writes a single ustar block
    whose only varying fields are name, size and checksum: take every other byte from a
    template tarfile itself made (so any Python's field quirks are kept) and splice those
    in. Anything else (long or non-ASCII names, huge files) goes through tarfile.
    """

    def __init__(self) -> None:
        self._templates: dict[int, tuple[bytes, bytes, bytes, int]] = {}

    def __call__(self, name: str, size: int, mode: int) -> bytes:
        if len(name) > 100 or not name.isascii() or size >= 8**11 or "\x00" in name:
            return tar_header(name, size, mode)
        template = self._templates.get(mode)
        if template is None:
            template = self._templates[mode] = self._template(mode)
        middle, after_size, tail, base = template
        raw_name = name.encode("ascii")
        size_field = b"%011o\x00" % size
        checksum = base + sum(raw_name) + sum(size_field)
        return b"".join(
            (
                raw_name.ljust(100, b"\x00"),
                middle,
                size_field,
                after_size,
                b"%06o\x00 " % checksum,
                tail,
            )
        )

    @staticmethod
    def _template(mode: int) -> tuple[bytes, bytes, bytes, int]:
        block = tar_header("", 0, mode)
        if len(block) != _TAR_BLOCK:  # pragma: no cover - tarfile always fits this one
            raise AssertionError("unexpected tar template")
        middle, after_size, tail = block[100:124], block[136:148], block[156:]
        base = 256 + sum(middle) + sum(after_size) + sum(tail)  # the checksum field counts as spaces
        return middle, after_size, tail, base


# --------------------------------------------------------------------------- block compressors


def _gzip_header(level: int) -> bytes:
    xfl = b"\x02" if level == 9 else b"\x04" if level == 1 else b"\x00"
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + xfl + _GZIP_OS  # no name, no mtime


def _stored(raw: memoryview) -> list[bytes | memoryview]:
    """Raw deflate made of stored blocks: the data as is, 5 bytes per 64 KiB (as pieces,
    joined once with the member's header and trailer)."""
    n = len(raw)
    if not n:
        return [b"\x01\x00\x00\xff\xff"]
    parts: list[bytes | memoryview] = []
    for start in range(0, n, _STORED_MAX):
        chunk = raw[start : start + _STORED_MAX]
        k = len(chunk)
        parts.append(struct.pack("<BHH", start + k >= n, k, k ^ 0xFFFF))
        parts.append(chunk)
    return parts


def _deflate(raw: memoryview, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


def _incompressible(raw: memoryview) -> bool:
    """Judge a block by a few spread samples at level 1: a small fraction of its cost."""
    n = len(raw)
    if n < _SAMPLE * _SAMPLES * 4:
        return False  # small: deflating it all is cheap enough
    step = (n - _SAMPLE) // (_SAMPLES - 1)
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    out = 0
    for i in range(_SAMPLES):
        out += len(c.compress(raw[i * step : i * step + _SAMPLE]))
    out += len(c.flush())
    return out >= STORE_RATIO * _SAMPLE * _SAMPLES


def _gzip_block(block: bytearray | memoryview, level: int) -> bytes:
    """One complete gzip member; stored when deflate would not pay."""
    raw = memoryview(block)
    body: list[bytes | memoryview] | None = None
    if level > 0 and not _incompressible(raw):
        deflated = _deflate(raw, level)
        if len(deflated) < len(raw):
            body = [deflated]
    if body is None:
        body = _stored(raw)
    trailer = struct.pack("<II", zlib.crc32(raw), len(raw) & 0xFFFFFFFF)
    return b"".join((_gzip_header(level), *body, trailer))


class _ZstdBlocks:
    """One zstd frame per block, with a compressor per worker thread (they are reusable)."""

    def __init__(self, zstd: ModuleType, level: int) -> None:
        param = zstd.CompressionParameter
        self._zstd = zstd
        self._options = {param.compression_level: level, param.checksum_flag: 1}
        self._local = threading.local()

    def __call__(self, block: bytearray | memoryview) -> bytes:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = self._zstd.ZstdCompressor(options=self._options)
        frame: bytes = compressor.compress(block, mode=self._zstd.ZstdCompressor.FLUSH_FRAME)
        return frame


# --------------------------------------------------------------------------- the pipeline


class _Stopped(Exception):
    """Internal: the stream was closed; the producer just leaves."""


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Signal(enum.Enum):
    END = "the archive is complete"
    CLOSED = "the stream was closed"


_Block: TypeAlias = "tuple[Future[bytes] | bytes | bytearray | memoryview, int]"
"""A block's compressed bytes (or their future), and the file bytes it holds."""
_Item: TypeAlias = "_Block | _Failure | _Signal"
"""What the producer queues for the reader."""
_Compress: TypeAlias = "Callable[[bytearray | memoryview], bytes]"


class _Pipeline:
    """Producer thread + compression pool + bounded queue; holds no reference to the stream.

    So an abandoned :class:`ArchiveStream` is collected, and its ``__del__`` stops this.
    """

    def __init__(
        self,
        bundle: Bundle,
        compress: _Compress | None,
        threads: int,
        cid_version: int,
    ) -> None:
        self.bundle = bundle
        self.cid_version = cid_version
        self.digests: dict[str, Digest] = {}
        self.stopping = False
        self.queue: queue.Queue[_Item] = queue.Queue(maxsize=(threads if compress else 1) + 2)
        self._compress = compress
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="jupyter-publish-compress")
            if compress is not None
            else None
        )
        self._buf = bytearray(BLOCK)
        self._view = memoryview(self._buf)
        self._pos = 0
        self._blocks = 0
        self._file_bytes = 0
        self._stopped = False
        self._headers = _HeaderMaker()
        self._thread = threading.Thread(target=self._produce, name="jupyter-publish-archive", daemon=True)
        self._thread.start()

    # -- producer side

    def _produce(self) -> None:
        try:
            for name in self.bundle.dirs:
                self._write(tar_header(name, 0, 0o755, tarfile.DIRTYPE))
            for source in self.bundle.files:
                if self.stopping:
                    raise _Stopped
                self._add_file(source.name, source.path, source.size, source.mode)
            self._skip(2 * _TAR_BLOCK)  # end of archive, then pad to a whole record like tarfile
            self._skip(-(self._offset()) % _TAR_RECORD)
            if self._pos:
                self._flush(self._view[: self._pos])
            self._put(_Signal.END)
        except _Stopped:
            pass
        except BaseException as exc:  # re-raised by the reader, in its thread
            with contextlib.suppress(_Stopped):
                self._put(_Failure(exc))

    def _offset(self) -> int:
        return self._blocks * BLOCK + self._pos

    def _add_file(self, name: str, path: os.PathLike[str] | str, size: int, mode: int) -> None:
        self._write(self._headers(name, size, mode))
        hasher = ContentHasher(self.cid_version)
        try:
            handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below, on every path
        except FileNotFoundError:
            raise SourceError(f"{path} was deleted while it was being published; publish again") from None
        except OSError as exc:
            raise SourceError(f"cannot publish {str(path)!r}: {exc.strerror or exc}") from None
        with handle:
            left = size
            while left:
                want = min(left, BLOCK - self._pos)
                target = self._view[self._pos : self._pos + want]
                got = handle.readinto(target)
                if not got:
                    raise SourceError(f"{path} shrank while it was being published; publish again")
                hasher.update(target[:got] if got < want else target)
                self._pos += got
                self._file_bytes += got
                left -= got
                if self._pos == BLOCK:
                    self._flush(self._buf)
            if handle.read(1):
                raise SourceError(f"{path} grew while it was being published; publish again")
        self.digests[name] = hasher.finish()
        self._skip(-size % _TAR_BLOCK)

    def _write(self, data: bytes) -> None:
        end = self._pos + len(data)
        if end < BLOCK:  # the usual case, a header inside the block: no loop
            self._view[self._pos : end] = data
            self._pos = end
            return
        view = memoryview(data)
        while view:
            take = min(len(view), BLOCK - self._pos)
            self._view[self._pos : self._pos + take] = view[:take]
            self._pos += take
            view = view[take:]
            if self._pos == BLOCK:
                self._flush(self._buf)

    def _skip(self, count: int) -> None:
        """Advance over zeros: a fresh block buffer is already zero-filled."""
        if self._pos + count < BLOCK:
            self._pos += count
            return
        while count:
            take = min(count, BLOCK - self._pos)
            self._pos += take
            count -= take
            if self._pos == BLOCK:
                self._flush(self._buf)

    def _flush(self, block: bytearray | memoryview) -> None:
        if self.stopping:
            raise _Stopped
        item: Future[bytes] | bytes | bytearray | memoryview = block
        if self._pool is not None and self._compress is not None:
            item = self._pool.submit(self._compress, block)
        self._put((item, self._file_bytes))
        self._file_bytes = 0
        self._blocks += 1
        if block is self._buf:  # the pool owns it now: never write to it again
            self._buf = bytearray(BLOCK)
            self._view = memoryview(self._buf)
        self._pos = 0

    def _put(self, item: _Item) -> None:
        self.queue.put(item)
        if self.stopping:
            raise _Stopped

    # -- stopping

    def stop(self) -> None:
        """Stop the producer and the pool, whatever state they are in; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping = True
        while self._thread.is_alive():
            self._drain()  # unblocks a producer waiting for room in the queue
            self._thread.join(0.01)
        self._drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.queue.put(_Signal.CLOSED)  # wakes a reader blocked in another thread

    def _drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return


class ArchiveStream(io.RawIOBase):
    """The archive of ``bundle`` as a readable, non-seekable stream, made as it is read.

    ``compression`` is ``"gzip"`` (level 1 by default), ``"zstd"`` (level 3) or ``"none"``;
    ``threads`` compress in parallel (default: every core). After the last byte,
    :attr:`digests` maps each file's bundle name to its :class:`Digest`. ``progress(n)``
    gets the file bytes archived, in the reader's thread. ``close()`` (also on garbage
    collection) stops every thread, even mid-way.
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        compression: str = "gzip",
        level: int | None = None,
        cid_version: int = 0,
        progress: Callable[[int], None] | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self._pipeline: _Pipeline | None = None  # first: close() runs even if we raise below
        if compression not in COMPRESSIONS:
            raise PublishError(f"unknown compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
        if cid_version not in (0, 1):
            raise PublishError(f"cid_version must be 0 or 1, not {cid_version!r}")
        self.compression = compression
        self.level = _check_level(compression, level)
        self.threads = max(1, int(threads if threads is not None else (os.cpu_count() or 1)))
        self._progress = progress
        self._chunk: bytes | bytearray | memoryview = b""
        self._at = 0
        self._done = False
        self._digests: dict[str, Digest] | None = None
        self._failure: BaseException | None = None
        compress: _Compress | None = None
        if compression == "gzip":
            gzip_level = self.level

            def compress(block: bytearray | memoryview) -> bytes:
                return _gzip_block(block, gzip_level)
        elif compression == "zstd":
            compress = _ZstdBlocks(load_zstd(), self.level)
        self._pipeline = _Pipeline(bundle, compress, self.threads, cid_version)

    suffix = property(lambda self: SUFFIX[self.compression], doc="'.tar.gz', '.tar.zst' or '.tar'.")
    content_type = property(lambda self: CONTENT_TYPE[self.compression], doc="The MIME type to upload with.")

    @property
    def digests(self) -> dict[str, Digest]:
        """Each file's size, sha256 and CID, by bundle name; known once the end was read."""
        if self._digests is None:
            raise RuntimeError("file digests are known only after the whole archive was read")
        return self._digests

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if not self._ready():
            return 0
        n = min(len(view), len(self._chunk) - self._at)
        view[:n] = self._chunk[self._at : self._at + n]
        self._at += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        parts: list[bytes | bytearray | memoryview] = []
        want = size
        while want and self._ready():
            chunk, at = self._chunk, self._at
            take = min(want, len(chunk) - at)
            parts.append(chunk if at == 0 and take == len(chunk) else chunk[at : at + take])
            self._at += take
            want -= take
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def readall(self) -> bytes:
        parts = []
        while self._ready():
            parts.append(self._chunk[self._at :])
            self._at = len(self._chunk)
        return b"".join(parts)

    def _ready(self) -> bool:
        """Make sure unread bytes are at hand; False at the end of the archive."""
        if self.closed:
            raise ValueError("I/O operation on a closed archive stream")
        if self._failure is not None:
            raise self._failure
        while self._at >= len(self._chunk):
            if self._done:
                return False
            pipeline = self._pipeline
            if pipeline is None:  # closed by another thread meanwhile
                raise ValueError("I/O operation on a closed archive stream")
            item = pipeline.queue.get()
            if item is _Signal.END:
                self._done = True
                self._chunk, self._at = b"", 0
                self._digests = pipeline.digests
                pipeline.stop()  # the pool's threads end now, close() or not
                return False
            if item is _Signal.CLOSED:
                raise ValueError("I/O operation on a closed archive stream")
            if isinstance(item, _Failure):
                self._fail(item.exc)
            data, file_bytes = item
            if isinstance(data, Future):
                try:
                    data = data.result()
                except CancelledError:  # close() from another thread cancelled the block
                    raise ValueError("I/O operation on a closed archive stream") from None
                except BaseException as exc:
                    self._fail(exc)
            self._chunk, self._at = data, 0
            if file_bytes and self._progress is not None:
                self._progress(file_bytes)
        return True

    def _fail(self, exc: BaseException) -> NoReturn:
        self._failure = exc
        if self._pipeline is not None:
            self._pipeline.stop()
        raise exc

    def close(self) -> None:
        """Stop the producer and the compressors (an abandoned upload leaks no thread)."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.stop()
        self._chunk = b""
        super().close()


def _check_level(compression: str, level: int | None) -> int:
    if compression == "none":
        return 0
    if level is None:
        return DEFAULT_LEVEL[compression]
    if compression == "gzip":
        if not isinstance(level, int) or not 0 <= level <= 9:
            raise PublishError(f"gzip level must be 0 to 9, not {level!r}")
        return level
    low, high = load_zstd().CompressionParameter.compression_level.bounds()
    if not isinstance(level, int) or not low <= level <= high:
        raise PublishError(f"zstd level must be {low} to {high}, not {level!r}")
    return level
