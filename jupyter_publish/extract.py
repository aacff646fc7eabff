"""Safe extraction of fetched ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.zst`` and ``.zip`` results.

Results come from stores anyone may have written to, so every archive is hostile
until proven otherwise. The same rules hold for tar and zip, on every Python:

* member names must be relative, without ``..``, drive letters, backslashes or NULs;
* links (tar symlinks and hard links, zip symlinks flagged in ``external_attr``) must
  resolve inside the tree, and nothing is ever written *through* a symlink;
* device files, FIFOs and sockets are refused;
* per-member, total-size and member-count caps are checked against the declared sizes
  *and* against the bytes actually streamed (a compressed stream may lie);
* a decompression bomb is stopped by a ratio cap: more than ``max_ratio`` times the
  archive's own size *and* more than ``ratio_floor`` (1 GiB) expanded is refused unless
  the caller lifts it (``max_ratio=None``); the 50 GiB total cap always holds;
* names nested deeper than 256 folders or longer than 4000 bytes are refused (an
  archive nested thousands of levels deep fails in one line, not with RecursionError).

``tarfile``'s ``"data"`` filter runs as a second opinion where it exists (3.11.4+).
Everything is extracted into a temporary directory beside ``dest`` and moved into
place only when the whole archive passed, so a refused archive leaves nothing behind.
Each file can be hashed (sha256, and its CID) while it is written, so a caller checking
the result against a manifest need not read it back from disk.

Compression is recognised by magic bytes: gzip (several concatenated members, as the
parallel :mod:`.archive` writes, are one stream), bz2, xz, and zstd (``compression.zstd``
from Python 3.14, the ``backports.zstd`` wheel before).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import itertools
import lzma
import os
import posixpath
import re
import secrets
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from .errors import SourceError, UnsafeArchiveError
from .sizes import CHUNK, human_size
from .text import one_line

if TYPE_CHECKING:
    from types import ModuleType

    from .hashing import ContentHasher, Digest

__all__ = [
    "ARCHIVE_SUFFIXES",
    "ArchiveMember",
    "archive_format",
    "archive_suffix",
    "extract_archive",
    "is_archive",
    "list_archive",
    "remove_tree",
]

DEFAULT_MAX_RATIO = 200.0
"""Expanded bytes per archive byte above which (past ``RATIO_FLOOR``) a bomb is assumed."""
RATIO_FLOOR = 2**30
"""Below 1 GiB expanded, any ratio is fine (a folder of zeros compresses 1000:1)."""
MAX_DEPTH = 256
"""Folders a member name may be nested in; real results are a few levels deep."""
MAX_NAME_BYTES = 4000
"""Longer names cannot be created on Linux (PATH_MAX 4096 with the staging prefix)."""
_T = TypeVar("_T", bound=contextlib.AbstractContextManager[object, bool | None])
_TAR_SUFFIXES = (
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tzst",
)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZIP_SUFFIXES = (".zip",)
ARCHIVE_SUFFIXES = tuple(sorted(_TAR_SUFFIXES + _ZIP_SUFFIXES, key=len, reverse=True))
"""Every name ending this module extracts, longest first (``.tar.gz`` before ``.tar``)."""
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_LINK_TARGET = 4096
# Errors that mean "the archive bytes are bad", as opposed to our own disk failing.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
    NotImplementedError,  # zipfile: unsupported compression method
    RuntimeError,  # zipfile: encrypted member without a password
)  # the zstd module's ZstdError joins once zstd is loaded (see _zstd)


@dataclass(frozen=True)
class ArchiveMember:
    """One entry of an archive listing, as declared by the archive (for previews)."""

    name: str
    size: int
    is_dir: bool
    kind: str = "file"  # file | dir | symlink | hardlink | device | fifo | other


# --------------------------------------------------------------------------- detection


def archive_format(path: str | os.PathLike[str]) -> str | None:
    """Return ``"tar"``, ``"zip"`` or ``None``: by suffix first, else by magic bytes.

    Sniffing covers results saved without a suffix (HTTP downloads). A zip is only
    sniffed for suffix-less files, so ``.xlsx``/``.docx``/``.whl`` stay documents.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if name.endswith(_ZIP_SUFFIXES):
        return "zip"
    if not p.is_file():
        return None
    if _looks_like_tar(p):
        return "tar"
    if not p.suffix and zipfile.is_zipfile(p):
        return "zip"
    return None


def archive_suffix(name: str) -> str | None:
    """The archive suffix ``name`` ends with (any case), by name alone: no file is read."""
    lower = name.lower()
    return next((name[len(name) - len(s) :] for s in ARCHIVE_SUFFIXES if lower.endswith(s)), None)


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is (named or looks like) a tar or zip archive we can extract."""
    return archive_format(path) is not None


def _looks_like_tar(path: Path) -> bool:
    """Check for the ustar magic, inside gzip/bz2/xz/zstd compression if need be."""
    openers: tuple[Callable[[Path], io.BufferedIOBase], ...] = (
        lambda p: p.open("rb"),
        gzip.open,
        bz2.open,
        lzma.open,
        _zstd_open,
    )
    for opener in openers:
        try:
            with opener(path) as fh:
                head = fh.read(512)
        except _read_errors(OSError, lzma.LZMAError):
            continue
        if len(head) >= 262 and head[257:262] == b"ustar":
            return True
    return False


def _read_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """:data:`_READ_ERRORS` as it is now (zstd adds its error once loaded), plus ``more``."""
    return (*_READ_ERRORS, *more)


def _is_zstd(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == _ZSTD_MAGIC


def _zstd() -> ModuleType:
    """The zstd module (or a one-line PublishError naming the extra to install)."""
    global _READ_ERRORS
    from .archive import load_zstd

    zstd = load_zstd()
    if zstd.ZstdError not in _READ_ERRORS:
        _READ_ERRORS = (*_READ_ERRORS, zstd.ZstdError)
    return zstd


def _zstd_open(path: Path) -> io.BufferedIOBase:
    """Open a zstd file for sniffing; OSError when it is not one or zstd is not installed."""
    from .errors import PublishError

    if not _is_zstd(path):
        raise OSError("not zstd")
    try:
        opened: io.BufferedIOBase = _zstd().open(path, "rb")
        return opened
    except PublishError:
        raise OSError("zstd is not installed") from None


@contextlib.contextmanager
def _open_tar(archive: Path) -> Iterator[tarfile.TarFile]:
    """A tar file for reading, through whatever compression it has (zstd by its magic)."""
    if not _is_zstd(archive):
        with tarfile.open(archive, "r:*") as tf:
            yield tf
        return
    with _zstd().open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:") as tf:
        yield tf


# --------------------------------------------------------------------------- listing


def list_archive(path: str | os.PathLike[str], *, limit: int | None = None) -> list[ArchiveMember]:
    """List members as the archive declares them, without extracting anything.

    ``limit`` stops early: a compressed tar has no index, so a full listing means
    decompressing the whole archive.
    """
    archive = Path(path)
    fmt = archive_format(archive)
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist() if limit is None else zf.infolist()[:limit]
                return [_zip_member(info) for info in infos]
        if fmt == "tar":
            out: list[ArchiveMember] = []
            with _open_tar(archive) as tf:
                for info in tf:
                    if limit is not None and len(out) >= limit:
                        break
                    out.append(_tar_member(info))
            return out
    except _READ_ERRORS as exc:
        raise UnsafeArchiveError(f"archive {archive.name}: cannot be read ({_reason(exc)})") from None
    raise UnsafeArchiveError(f"archive {archive.name}: not a tar or zip archive")


def _tar_member(info: tarfile.TarInfo) -> ArchiveMember:
    return ArchiveMember(info.name, info.size if info.isreg() else 0, info.isdir(), _tar_kind(info))


def _zip_member(info: zipfile.ZipInfo) -> ArchiveMember:
    kind = _zip_kind(info)
    return ArchiveMember(info.filename, info.file_size, kind == "dir", kind)


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.ischr() or info.isblk():
        return "device"
    if info.isfifo():
        return "fifo"
    return "other"


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "other"
    return "file"


# --------------------------------------------------------------------------- extraction


class _Refused(Exception):
    """Internal: a member broke a rule; carries the member name and the reason."""

    def __init__(self, member: str | None, reason: str) -> None:
        super().__init__(reason)
        self.member, self.reason = member, reason


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_total_bytes: int = 50 * 2**30,
    max_member_bytes: int | None = None,
    max_members: int = 1_000_000,
    digests: dict[str, Digest] | None = None,
    cid_version: int | None = None,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    ratio_floor: int = RATIO_FLOOR,
) -> list[Path]:
    """Extract ``archive`` into ``dest`` all-or-nothing; return the extracted non-directories.

    ``dest`` may be missing (it is created) or an existing directory (entries are added,
    never overwritten). Any refusal raises :class:`UnsafeArchiveError` naming the member
    and leaves ``dest`` exactly as it was; a missing ``archive`` raises :class:`SourceError`.

    Given a ``digests`` dict, each extracted file is hashed as it is written and the dict
    gets ``{path relative to dest (POSIX): Digest}`` once everything succeeded; hard links
    and symlinks to an extracted file get that file's digest. The CID is computed too when
    ``cid_version`` is 0 or 1; with ``None`` only size and sha256 are (``cid`` is ``""``).

    ``max_ratio``: expanding to more than ``max_ratio`` times the archive's size *and*
    more than ``ratio_floor`` bytes is refused as a decompression bomb, checked against
    each declared size before anything is written and against the bytes as they stream;
    ``None`` lifts this cap for an archive you trust (``max_total_bytes`` still holds).
    """
    if cid_version not in (None, 0, 1):
        raise ValueError(f"cid_version must be None, 0 or 1, not {cid_version!r}")
    archive, dest = Path(archive), Path(dest).absolute()
    if not archive.is_file():
        raise SourceError(f"{archive}: no such archive, nothing extracted")
    fmt = archive_format(archive)
    if fmt is None:
        raise UnsafeArchiveError(_message(archive, None, "is not a tar or zip archive"))
    if dest.exists() and not dest.is_dir():
        raise UnsafeArchiveError(_message(archive, None, f"destination {dest} is not a directory"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if max_ratio is not None and not max_ratio > 0:
        raise ValueError(f"max_ratio must be a positive number or None, not {max_ratio!r}")
    limits = _Limits(max_total_bytes, max_member_bytes, max_members)
    if max_ratio is not None and max_ratio != float("inf"):
        limits.ratio_cap = max(int(ratio_floor), int(max_ratio * archive.stat().st_size))
        limits.max_ratio = max_ratio
    tmp = _make_temp_dir(dest)
    try:
        writer = _Writer(tmp, dest, limits, hashing=digests is not None, cid_version=cid_version)
        try:
            if fmt == "tar":
                _extract_tar(archive, writer)
            else:
                _extract_zip(archive, writer)
            writer.final_check()
            _move_into_place(tmp, dest)
        except _Refused as exc:
            raise UnsafeArchiveError(_message(archive, exc.member, exc.reason)) from None
    except BaseException:
        remove_tree(tmp)
        raise
    if digests is not None:
        digests.update(writer.digests)
    return [dest / rel for rel in writer.written]


def _reason(exc: BaseException) -> str:
    """A library's error text on one line: tarfile's ``r:*`` lists every method it tried,
    one per line."""
    return one_line(exc, 200)


def _message(archive: Path, member: str | None, reason: str) -> str:
    """The one-line error: archive, member, why, and the reassurance."""
    who = f"member {_quote(member)} " if member is not None else ""
    return f"archive {archive.name}: {who}{reason}; refused, nothing extracted"


def _quote(text: str, limit: int = 200) -> str:
    """Quote a name from an archive so it can't break the one-line message."""
    clean = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return f"'{clean}'"


def _make_temp_dir(dest: Path) -> Path:
    """A fresh hidden directory beside ``dest`` (same filesystem, so rename is atomic)."""
    for _ in range(100):
        candidate = dest.parent / f".{dest.name}.extracting-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()  # honours the umask, unlike mkdtemp's 0o700
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary directory beside {dest}")


def _move_into_place(tmp: Path, dest: Path) -> None:
    """Rename the finished tree to ``dest``, or add its entries to an existing ``dest``."""
    if not os.path.lexists(dest):
        os.rename(tmp, dest)
        return
    entries = sorted(tmp.iterdir())
    for entry in entries:
        if os.path.lexists(dest / entry.name):
            raise _Refused(entry.name, "already exists in the destination")
    moved: list[Path] = []
    try:
        for entry in entries:
            _move(entry, dest / entry.name)
            moved.append(entry)
    except BaseException:
        for entry in reversed(moved):  # put back what we added, so dest is as it was
            with contextlib.suppress(OSError):
                _move(dest / entry.name, entry)
        raise
    tmp.rmdir()


def _move(src: Path, dst: Path) -> None:
    try:
        os.rename(src, dst)
    except OSError:  # dest is a mount point or a symlink onto another filesystem
        shutil.move(str(src), str(dst))


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a folder however deep it is, ignoring what is already gone.

    ``shutil.rmtree`` recurses once per level (RecursionError past ~1000 levels) and
    whole paths may pass PATH_MAX; this walks one level at a time through directory file
    descriptors, moving each subfolder up to the top before emptying it.
    """
    top = os.fspath(path)
    if os.path.islink(top):  # a link (say, staging pointed at scratch space): never its target
        with contextlib.suppress(FileNotFoundError):
            os.unlink(top)
        return
    try:
        shutil.rmtree(top)
        return
    except FileNotFoundError:
        return
    except (RecursionError, OSError):
        pass
    with contextlib.suppress(OSError):
        _remove_flat(top)


def _remove_flat(top: str) -> None:
    """Empty ``top`` without recursion: subfolders are renamed to ``top`` itself first."""
    top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        pending: list[str | None] = [None]
        count = itertools.count()
        while pending:
            name = pending.pop()
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
            fd = top_fd if name is None else os.open(name, flags, dir_fd=top_fd)
            try:
                for entry in list(os.scandir(fd)):
                    if entry.is_dir(follow_symlinks=False):
                        moved = f".jp-rm-{next(count)}"
                        os.rename(entry.name, moved, src_dir_fd=fd, dst_dir_fd=top_fd)
                        pending.append(moved)
                    else:
                        os.unlink(entry.name, dir_fd=fd)
            finally:
                if fd != top_fd:
                    os.close(fd)
            if name is not None:  # its subfolders now sit at the top: it is empty
                os.rmdir(name, dir_fd=top_fd)
    finally:
        os.close(top_fd)
    os.rmdir(top)


@dataclass
class _Limits:
    max_total_bytes: int
    max_member_bytes: int | None
    max_members: int
    ratio_cap: int | None = None
    """Expanded bytes past which the archive counts as a decompression bomb."""
    max_ratio: float | None = None


@dataclass
class _FileMeta:
    size: int  # as declared by the archive
    mode: int
    mtime: float | None


_Vet = Callable[[], None] | None


def _run(vet: _Vet) -> None:
    if vet is not None:
        vet()


class _CappedReader:
    """File-like wrapper that counts bytes as they stream and stops at the caps.

    A zip entry (or a buggy decompressor) may produce more than it declared; this is
    what keeps a bomb from filling the disk regardless of what the headers say.
    """

    def __init__(self, src: IO[bytes], member: str, allowed: int, declared: int, why: str) -> None:
        self.src = src
        self.member = member
        self.allowed = allowed  # what the caps leave for this member
        self.declared = declared  # what the archive said it would be
        self.why = why
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.src.read(CHUNK if n is None or n < 0 else n)
        except _READ_ERRORS as exc:
            raise _Refused(self.member, f"is corrupt ({_reason(exc)})") from None
        self.count += len(data)
        if self.count > self.declared:
            raise _Refused(self.member, f"expands beyond its declared {self.declared} bytes")
        if self.count > self.allowed:
            raise _Refused(self.member, self.why)
        return data


class _ShaOnly:
    """The sha256 half of a ContentHasher, for callers that need no CID."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)

    def finish(self) -> Digest:
        from .hashing import Digest

        return Digest(self.size, self._sha.hexdigest(), "", 0)


class _Writer:
    """Creates members under the temporary root, enforcing every rule on the way."""

    def __init__(
        self,
        root: Path,
        dest: Path,
        limits: _Limits,
        *,
        hashing: bool = False,
        cid_version: int | None = None,
    ) -> None:
        self.root, self.dest, self.limits = root, dest, limits
        self.hashing, self.cid_version = hashing, cid_version
        self.digests: dict[str, Digest] = {}
        self.real_root = os.path.realpath(root)
        self.members = 0
        self.total = 0
        self.written: list[Path] = []
        self._seen: set[Path] = set()
        self._dirs: set[Path] = set()
        self._top_checked: set[str] = set()

    # -- rules shared by tar and zip

    def admit(self, raw_name: str) -> Path | None:
        """Validate a member name and count it; ``None`` means the archive root itself."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise _Refused(raw_name, f"exceeds the cap of {self.limits.max_members} members")
        if len(raw_name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise _Refused(raw_name, f"has a name longer than {MAX_NAME_BYTES} bytes")
        rel = _clean_name(raw_name)
        if rel is not None and len(rel.parts) > MAX_DEPTH:
            raise _Refused(raw_name, f"is nested {len(rel.parts)} folders deep, more than {MAX_DEPTH}")
        if rel is not None and rel.parts[0] not in self._top_checked:
            self._top_checked.add(rel.parts[0])
            if os.path.lexists(self.dest / rel.parts[0]):
                raise _Refused(raw_name, "already exists in the destination")
        return rel

    def reserve(self, name: str, declared: int) -> tuple[int, str]:
        """Check a declared size against the caps; return bytes allowed and the reason."""
        cap = self.limits.max_member_bytes
        if cap is not None and declared > cap:
            raise _Refused(name, f"declares {declared} bytes, above the per-member cap of {cap}")
        left = self.limits.max_total_bytes - self.total
        if declared > left:
            raise _Refused(
                name, f"would bring the total above the cap of {self.limits.max_total_bytes} bytes"
            )
        allowed, why = left, f"expands beyond the total cap of {self.limits.max_total_bytes} bytes"
        ratio_cap = self.limits.ratio_cap
        if ratio_cap is not None and ratio_cap - self.total < allowed:
            allowed, why = ratio_cap - self.total, self._bomb()
            if declared > allowed:
                raise _Refused(name, self._bomb())
        if cap is not None and cap < allowed:
            return cap, f"expands beyond the per-member cap of {cap} bytes"
        return allowed, why

    def _bomb(self) -> str:
        return (
            f"would expand the archive more than {self.limits.max_ratio:g} times "
            f"(past {human_size(self.limits.ratio_cap or 0)}), like a decompression bomb; "
            "if you trust it, fetch with max_ratio=None (--max-ratio 0)"
        )

    def _target(self, name: str, rel: Path) -> Path:
        """Make the parents of ``rel`` as real directories; never pass through a symlink."""
        path = self.root
        for part in rel.parts[:-1]:
            path = path / part
            if path in self._dirs:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                path.mkdir()
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise _Refused(name, f"would be written through the symlink {_quote(part)}") from None
                if not stat.S_ISDIR(st.st_mode):
                    raise _Refused(name, f"has a parent {_quote(part)} that is not a directory")
            self._dirs.add(path)
        return self.root / rel

    def _clear(self, name: str, target: Path) -> None:
        """Remove an earlier file/link of the same name; a directory is never replaced."""
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise _Refused(name, "would replace a directory")
        target.unlink()
        self.digests.pop(target.relative_to(self.root).as_posix(), None)

    def _record(self, rel: Path) -> None:
        if rel not in self._seen:
            self._seen.add(rel)
            self.written.append(rel)

    # -- member kinds; ``vet`` runs after our checks and before anything is created

    def make_dir(self, name: str, rel: Path, vet: _Vet = None) -> None:
        _run(vet)
        target = self._target(name, rel)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            target.mkdir()
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise _Refused(name, "is a directory where a file or link already is")
        self._dirs.add(target)

    def make_file(self, name: str, rel: Path, src: IO[bytes], meta: _FileMeta, vet: _Vet = None) -> None:
        allowed, why = self.reserve(name, meta.size)
        _run(vet)
        target = self._target(name, rel)
        self._clear(name, target)
        reader = _CappedReader(src, name, allowed, meta.size, why)
        hasher = self._hasher()
        # O_EXCL + O_NOFOLLOW: never open something that appeared behind our back.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(target, flags, 0o666), "wb") as out:
            while data := reader.read(CHUNK):
                if hasher is not None:
                    hasher.update(data)
                out.write(data)
        self.total += reader.count
        if hasher is not None:
            self.digests[rel.as_posix()] = hasher.finish()
        _apply_mode(target, meta.mode, meta.mtime)
        self._record(rel)

    def make_symlink(self, name: str, rel: Path, link: str, vet: _Vet = None) -> None:
        outside = f"is a symlink to {_quote(link)}, outside the destination"
        if "\x00" in link or not link:
            raise _Refused(name, "is a symlink with an empty or invalid target")
        if link.startswith(("/", "\\")) or _DRIVE.match(link):
            raise _Refused(name, f"is a symlink to the absolute path {_quote(link)}")
        if "\\" in link:
            raise _Refused(name, f"is a symlink to {_quote(link)}, which contains a backslash")
        lexical = posixpath.normpath(posixpath.join(rel.parent.as_posix(), link))
        if lexical == ".." or lexical.startswith("../"):
            raise _Refused(name, outside)
        target = self._target(name, rel)
        if not self._inside(os.path.join(target.parent, link)):
            raise _Refused(name, outside)
        _run(vet)
        self._clear(name, target)
        os.symlink(link, target)
        self._record(rel)

    def make_hardlink(self, name: str, rel: Path, link: str, vet: _Vet = None) -> None:
        try:
            source_rel = _clean_name(link)
        except _Refused:
            raise _Refused(name, f"is a hard link to {_quote(link)}, outside the destination") from None
        if source_rel is None:
            raise _Refused(name, "is a hard link to the archive root")
        for parent in list(reversed(source_rel.parents))[1:]:
            if os.path.islink(self.root / parent):
                raise _Refused(name, f"is a hard link through the symlink {_quote(str(parent))}")
        try:
            st = os.lstat(self.root / source_rel)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise _Refused(name, f"is a hard link to {_quote(link)}, not an earlier file in the archive")
        self.reserve(name, st.st_size)  # another copy of the bytes, as far as a reader knows
        _run(vet)
        target = self._target(name, rel)
        self._clear(name, target)
        os.link(self.root / source_rel, target)
        self.total += st.st_size
        if source_rel.as_posix() in self.digests:  # the same bytes: no need to read them again
            self.digests[rel.as_posix()] = self.digests[source_rel.as_posix()]
        self._record(rel)

    def _hasher(self) -> ContentHasher | _ShaOnly | None:
        if not self.hashing:
            return None
        if self.cid_version is None:
            return _ShaOnly()
        from .hashing import ContentHasher

        return ContentHasher(self.cid_version)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def final_check(self) -> None:
        """Re-resolve every symlink in the finished tree: later members can't redirect one."""
        for rel in self.written:
            path = self.root / rel
            if os.path.islink(path) and not self._inside(str(path)):
                raise _Refused(
                    rel.as_posix(),
                    f"is a symlink to {_quote(os.readlink(path))}, which resolves outside the destination",
                )
            if self.hashing and os.path.islink(path):  # a link to an extracted file: its digest
                resolved = Path(os.path.relpath(os.path.realpath(path), self.real_root)).as_posix()
                if resolved in self.digests:
                    self.digests[rel.as_posix()] = self.digests[resolved]


def _clean_name(raw: str) -> Path | None:
    """Turn an archive name into a safe relative path, or refuse it.

    ``./`` and empty components are dropped (``tar -C dir .`` makes them); ``None``
    means the name is the archive root.
    """
    if "\x00" in raw:
        raise _Refused(raw, "has a NUL byte in its name")
    if "\\" in raw:
        raise _Refused(raw, "has a backslash in its name (a Windows path trick)")
    if raw.startswith("/"):
        raise _Refused(raw, "has an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(_DRIVE.match(p) for p in parts):
        raise _Refused(raw, "has a drive letter")
    if ".." in parts:
        raise _Refused(raw, "would land outside the destination")
    return Path(*parts) if parts else None


def safe_relative_path(name: str, where: str) -> Path:
    """A name from a server or an archive as a path that cannot leave its folder.

    Raises UnsafeArchiveError naming ``where`` for absolute paths, ``..``, drive
    letters, backslashes or NUL bytes, and for an empty name.
    """
    try:
        path = _clean_name(name)
    except _Refused as refused:
        raise UnsafeArchiveError(
            f"{where}: name {name!r} {refused.reason}; refused, nothing written"
        ) from None
    if path is None:
        raise UnsafeArchiveError(f"{where}: an object has an empty name; refused, nothing written")
    return path


def _apply_mode(target: Path, mode: int, mtime: float | None) -> None:
    """Keep only the executable bit from the archive (like the ``data`` filter), and mtime."""
    if mode & 0o111:
        current = os.stat(target).st_mode
        os.chmod(target, current | ((current & 0o444) >> 2))
    if mtime is not None:
        with contextlib.suppress(OSError, OverflowError, ValueError):
            os.utime(target, (mtime, mtime))


# --------------------------------------------------------------------------- tar


def _extract_tar(archive: Path, writer: _Writer) -> None:
    with contextlib.ExitStack() as stack:
        try:
            tf = stack.enter_context(_open_tar(archive))
        except _read_errors(OSError) as exc:
            raise _Refused(None, f"cannot be opened as tar ({_reason(exc)})") from None
        for info in _iter_tar(tf):
            with _writing(info.name):
                _extract_tar_member(tf, info, writer)


@contextlib.contextmanager
def _writing(member: str) -> Iterator[None]:
    """Our own disk refusing a member (a name too long, no space) is one line, too."""
    try:
        yield
    except OSError as exc:
        raise _Refused(member, f"cannot be written ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _opened(opener: Callable[[], _T], what: str) -> Iterator[_T]:
    """Open an archive, turning "not really an archive" into a refusal."""
    try:
        handle = opener()
    except _read_errors(OSError) as exc:
        raise _Refused(None, f"cannot be opened as {what} ({_reason(exc)})") from None
    with handle:
        yield handle


def _iter_tar(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Iterate lazily (no full index in memory), turning corruption into a refusal."""
    last: str | None = None
    while True:
        try:
            info = tf.next()
        except _READ_ERRORS as exc:
            where = "is followed by corrupt data" if last else "is corrupt"
            raise _Refused(last, f"{where} ({_reason(exc)})") from None
        if info is None:
            return
        last = info.name
        yield info


def _admit(writer: _Writer, name: str, kind: str) -> Path | None:
    """The rules every member meets, tar or zip: a safe name and a plain kind.

    ``None`` means the archive's root folder, which has nothing to extract.
    """
    rel = writer.admit(name)
    if kind in ("device", "fifo", "other"):
        raise _Refused(name, f"is a {_KIND_WORDS[kind]}, which is never extracted")
    if rel is None and kind != "dir":
        raise _Refused(name, "has an empty name")
    return rel


def _extract_tar_member(tf: tarfile.TarFile, info: tarfile.TarInfo, writer: _Writer) -> None:
    name = info.name
    kind = _tar_kind(info)
    rel = _admit(writer, name, kind)
    if rel is None:
        return

    def vet() -> None:
        _second_opinion(info, writer.root)

    if kind == "dir":
        writer.make_dir(name, rel, vet)
    elif kind == "symlink":
        writer.make_symlink(name, rel, info.linkname, vet)
    elif kind == "hardlink":
        writer.make_hardlink(name, rel, info.linkname, vet)
    else:
        src = tf.extractfile(info)
        if src is None:  # pragma: no cover - isreg() members always have data
            raise _Refused(name, "has no data")
        with src:
            writer.make_file(name, rel, src, _FileMeta(info.size, info.mode, info.mtime), vet)


_KIND_WORDS = {"device": "device file", "fifo": "FIFO", "other": "special file"}


def _second_opinion(info: tarfile.TarInfo, root: Path) -> None:
    """Run tarfile's own ``data`` filter too (Python 3.11.4+); our rules come first."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    try:
        data_filter(info, str(root))
    except tarfile.FilterError as exc:
        raise _Refused(info.name, f"is refused by tarfile's data filter ({_reason(exc)})") from None


# --------------------------------------------------------------------------- zip


def _extract_zip(archive: Path, writer: _Writer) -> None:
    with _opened(lambda: zipfile.ZipFile(archive), "zip") as zf:
        for info in zf.infolist():
            with _writing(info.filename):
                _extract_zip_member(zf, info, writer)


def _extract_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, writer: _Writer) -> None:
    name = info.filename
    kind = _zip_kind(info)
    rel = _admit(writer, name, kind)
    if rel is None:
        return
    if kind == "dir":
        writer.make_dir(name, rel)
        return
    try:
        src = zf.open(info)
    except _READ_ERRORS as exc:
        raise _Refused(name, f"cannot be read ({_reason(exc)})") from None
    with src:
        if kind == "symlink":
            writer.make_symlink(name, rel, _read_link_target(src, name))
        else:
            meta = _FileMeta(info.file_size, info.external_attr >> 16, _zip_mtime(info))
            writer.make_file(name, rel, src, meta)


def _read_link_target(src: IO[bytes], name: str) -> str:
    """A zip symlink stores its target as the member's data; it is short or it's a lie."""
    try:
        data = src.read(_MAX_LINK_TARGET + 1)
    except _READ_ERRORS as exc:
        raise _Refused(name, f"is corrupt ({_reason(exc)})") from None
    if len(data) > _MAX_LINK_TARGET:
        raise _Refused(name, "is a symlink with an implausibly long target")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(name, "is a symlink whose target is not UTF-8") from None


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None
