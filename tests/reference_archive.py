"""The archive as publish made it before issue 8: tarfile + one gzip stream, one thread.

Kept only as an independent reference for the tests: ``ArchiveStream`` must give the very
same tar bytes and per-file digests (tests/test_archive_stream.py), and the same content
must give the same archive (tests/test_bundle.py).
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from jupyter_publish.bundle import Bundle
from jupyter_publish.errors import SourceError
from jupyter_publish.hashing import ContentHasher, Digest, HashingReader

ARCHIVE_MTIME = 0
COMPRESS_LEVEL = 6


class _HashingWriter:
    """A write-only file that hashes what passes through it to ``target``."""

    def __init__(self, target, hasher: ContentHasher) -> None:  # type: ignore[no-untyped-def]
        self._target = target
        self.hasher = hasher

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()


def write_archive(
    bundle: Bundle, target: Path, cid_version: int = 0, progress=None
) -> tuple[dict[str, Digest], Digest]:  # type: ignore[no-untyped-def]
    """Write ``bundle`` as a deterministic tar.gz at ``target``.

    Returns each file's digest (computed as it was archived) and the archive's digest.
    """
    digests: dict[str, Digest] = {}
    archive_hasher = ContentHasher(cid_version)
    with open(target, "wb") as raw:
        sink = _HashingWriter(raw, archive_hasher)
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=sink, mtime=ARCHIVE_MTIME, compresslevel=COMPRESS_LEVEL
            ) as gz,  # type: ignore[arg-type]
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in bundle.dirs:
                tar.addfile(_tarinfo(name, 0, 0o755, tarfile.DIRTYPE))
            for source in bundle.files:
                hasher = ContentHasher(cid_version)
                with open(source.path, "rb") as handle:
                    reader = HashingReader(handle, hasher, source.size, progress)
                    try:
                        tar.addfile(_tarinfo(source.name, source.size, source.mode), reader)
                    except OSError as exc:
                        raise SourceError(
                            f"{source.path} changed while it was being published ({exc}); try again"
                        ) from None
                    if reader.read(1):
                        raise SourceError(f"{source.path} grew while it was being published; publish again")
                digests[source.name] = hasher.finish()
    return digests, archive_hasher.finish()


def _tarinfo(name: str, size: int, mode: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = size, mode, kind
    info.mtime, info.uid, info.gid, info.uname, info.gname = ARCHIVE_MTIME, 0, 0, "", ""
    return info
