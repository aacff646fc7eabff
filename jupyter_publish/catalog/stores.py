"""Where catalog records are kept: three operations, one class per kind of place.

``put`` writes one new object (on S3 a single ``PutObject``: a job's credentials need no
more), ``list_after`` gives the names sorting after a start (S3 ``StartAfter``, so a
reader lists only what is new), ``get`` reads one object's bytes. Nothing else. Each
takes the catalog's sub-folder: ``records/`` (one object per job) or ``packs/`` (records
a reader bundled for the next cold reader, :mod:`.packs`).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Protocol

from ..errors import BackendError, DestinationError
from . import records
from .location import CatalogLocation
from .records import RECORDS, RecordTooLargeError


class CatalogStore(Protocol):
    where: str
    """Where the records are (``s3://…/records/`` or a folder): messages name it."""

    def put(self, name: str, data: bytes, folder: str = RECORDS) -> None: ...

    def list_after(self, start: str, folder: str = RECORDS) -> list[tuple[str, int]]:
        """``(name, size)`` of every object in ``folder`` sorting after ``start``, in order."""
        ...

    def get(self, name: str, folder: str = RECORDS) -> bytes: ...

    def close(self) -> None: ...


WRITE_TIMEOUT = 5.0
"""Seconds a one-try store waits to connect, and between bytes (:func:`open_store`)."""


def open_store(
    location: CatalogLocation, max_concurrency: int = 32, *, one_try: bool = False
) -> CatalogStore:
    """The store of ``location``. ``one_try``: every request is a single short attempt (a
    publish writing its record: a failed PUT waits in the pending table, which is its
    retry, instead of holding the publish up for botocore's retries and timeouts)."""
    if location.kind == "s3":
        return S3Store(location, max_concurrency, one_try=one_try)
    assert location.path is not None
    return FolderStore(location.path)


class FolderStore:
    """Records as files in ``FOLDER/records/`` (a shared or network drive)."""

    def __init__(self, path: Path) -> None:
        self.root = path
        self.where = str(path / RECORDS)

    def put(self, name: str, data: bytes, folder: str = RECORDS) -> None:
        place = self.root / folder
        if not self.root.is_dir():  # never made here: an unmounted share would fill a local folder
            raise BackendError(f"the catalog folder {self.root} does not exist: create it or mount the share")
        try:
            place.mkdir(exist_ok=True)
            tmp = place / f".{name}.{secrets.token_hex(4)}.tmp"
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, place / name)  # never replaces a record: they are immutable
            except FileExistsError:
                pass  # the same name is the same sha256: the same bytes
            except OSError:  # a filesystem without hard links
                if not (place / name).exists():
                    os.replace(tmp, place / name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        except OSError as exc:
            reason = exc.strerror or exc
            raise BackendError(f"cannot write to the catalog folder {place}: {reason}") from None

    def list_after(self, start: str, folder: str = RECORDS) -> list[tuple[str, int]]:
        place = self.root / folder
        found: list[tuple[str, int]] = []
        try:
            entries = list(os.scandir(place))
        except FileNotFoundError:
            if not self.root.is_dir():
                raise DestinationError(f"the catalog folder {self.root} does not exist") from None
            return []
        except OSError as exc:
            raise BackendError(f"cannot list the catalog folder {place}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name > start and not entry.name.startswith("."):
                with contextlib.suppress(OSError):  # a link's own size: get() refuses it unread
                    found.append((entry.name, entry.stat(follow_symlinks=False).st_size))
        return sorted(found)

    def get(self, name: str, folder: str = RECORDS) -> bytes:
        """A record's bytes, if it is a regular file. Anyone who may write to the share
        may make a record's name a named pipe (open() blocked every reader's listing for
        good) or a link to ``/dev/zero`` (read to the size limit, 32 at once): refused,
        never opened for reading or followed."""
        path = self.root / folder / name
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise records.TamperedRecordError(str(path), "it is a symbolic link, not a record") from None
            raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            with open(fd, "rb", closefd=True) as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise records.TamperedRecordError(str(path), "it is not a regular file")
                data = handle.read(records.MAX_RECORD_BYTES + 1)
        except OSError as exc:
            raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from None
        if len(data) > records.MAX_RECORD_BYTES:
            raise RecordTooLargeError(str(path))
        return data

    def close(self) -> None:
        pass


class S3Store:
    """Records as objects under ``s3://BUCKET/PREFIX/records/``, through the S3 backend's
    client (its endpoint, profile, keys, retries, timeouts and one-line errors)."""

    def __init__(self, location: CatalogLocation, max_concurrency: int, *, one_try: bool = False) -> None:
        from ..backends.s3 import S3Backend

        self.bucket = location.bucket
        self.prefix = location.prefix
        self.where = f"s3://{self.bucket}/{self.prefix}{RECORDS}"
        # Its own client, not the destination's: that one is made for a long transfer
        # (retries, the idle limit) and botocore sets both per client, not per request.
        self.backend = S3Backend(bucket=self.bucket, max_concurrency=max_concurrency, **location.options)
        self.backend.parse_timestamps = False  # listings are keys and sizes only
        if one_try:
            self.backend.single_try(WRITE_TIMEOUT)

    def put(self, name: str, data: bytes, folder: str = RECORDS) -> None:
        key = self.prefix + folder + name
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        self._call(
            lambda: self.backend.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=checksum,  # the store checks every byte it keeps
                ContentType="application/gzip" if name.endswith(".gz") else "application/json",
            ),
            what=f"s3://{self.bucket}/{key}",
        )

    def list_after(self, start: str, folder: str = RECORDS) -> list[tuple[str, int]]:
        paginator = self.backend.client.get_paginator("list_objects_v2")
        prefix = self.prefix + folder
        found: list[tuple[str, int]] = []

        def pages() -> list[Any]:
            return list(paginator.paginate(Bucket=self.bucket, Prefix=prefix, StartAfter=prefix + start))

        for page in self._call(pages, what=f"s3://{self.bucket}/{prefix}"):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if "/" not in name:
                    found.append((name, int(item.get("Size", 0))))
        return found

    def get(self, name: str, folder: str = RECORDS) -> bytes:
        """One object's bytes. botocore retries the GET itself (connection faults, 5xx,
        SlowDown), and the backend marks those errors as retried, so :func:`retrying` here
        adds no try to them: it only reads again a body cut off mid-read, which botocore
        does not retry."""
        from ..retry import retrying

        where = f"s3://{self.bucket}/{self.prefix}{folder}{name}"

        def read() -> bytes:
            data = bytearray()
            for chunk in self.backend.read(where):
                data += chunk
                if len(data) > records.MAX_RECORD_BYTES:
                    raise RecordTooLargeError(where)
            return bytes(data)

        return retrying(read)

    def _call(self, action: Any, *, what: str) -> Any:
        return self.backend._call(action, what=what)

    def close(self) -> None:
        self.backend.close()
