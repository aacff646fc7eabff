"""Where catalog records are kept: three operations, one class per kind of place.

``put`` writes one new object (on S3 a single ``PutObject``: a job's credentials need no
more), ``list_after`` gives the record names sorting after a start (S3 ``StartAfter``, so
a reader lists only what is new), ``get`` reads one record's bytes. Nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from ..errors import BackendError, DestinationError
from .location import CatalogLocation
from .records import RECORDS, parse_name

MAX_RECORD_BYTES = 256 * 1024 * 1024
"""A record lists every file of a job: 20,000 files are ~8 MB; anything near this is no record."""


class CatalogStore(Protocol):
    where: str

    def put(self, name: str, data: bytes) -> None: ...

    def list_after(self, start: str) -> list[tuple[str, int]]:
        """``(name, size)`` of every record whose name sorts after ``start``, in order."""
        ...

    def get(self, name: str) -> bytes: ...

    def close(self) -> None: ...


def open_store(location: CatalogLocation, max_concurrency: int = 32) -> CatalogStore:
    if location.kind == "s3":
        return S3Store(location, max_concurrency)
    assert location.path is not None
    return FolderStore(location.path)


class FolderStore:
    """Records as files in ``FOLDER/records/`` (a shared or network drive)."""

    def __init__(self, path: Path) -> None:
        self.root = path
        self.folder = path / RECORDS.rstrip("/")
        self.where = str(self.folder)

    def put(self, name: str, data: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{name}.{secrets.token_hex(4)}.tmp"
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, self.folder / name)  # never replaces a record: they are immutable
            except FileExistsError:
                pass  # the same name is the same sha256: the same bytes
            except OSError:  # a filesystem without hard links
                if not (self.folder / name).exists():
                    os.replace(tmp, self.folder / name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        except OSError as exc:
            raise BackendError(
                f"cannot write to the catalog folder {self.folder}: {exc.strerror or exc}"
            ) from None

    def list_after(self, start: str) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            if not self.root.is_dir():
                raise DestinationError(f"the catalog folder {self.root} does not exist") from None
            return []
        except OSError as exc:
            raise BackendError(
                f"cannot list the catalog folder {self.folder}: {exc.strerror or exc}"
            ) from None
        for entry in entries:
            if entry.name > start and not entry.name.startswith(".") and parse_name(entry.name):
                with contextlib.suppress(OSError):
                    found.append((entry.name, entry.stat().st_size))
        return sorted(found)

    def get(self, name: str) -> bytes:
        try:
            with open(self.folder / name, "rb") as handle:
                return handle.read(MAX_RECORD_BYTES + 1)
        except OSError as exc:
            raise BackendError(f"cannot read {self.folder / name}: {exc.strerror or exc}") from None

    def close(self) -> None:
        pass


class S3Store:
    """Records as objects under ``s3://BUCKET/PREFIX/records/``, through the S3 backend's
    client (its endpoint, profile, keys, retries, timeouts and one-line errors)."""

    def __init__(self, location: CatalogLocation, max_concurrency: int) -> None:
        from ..backends.s3 import S3Backend

        self.bucket = location.bucket
        self.prefix = location.prefix + RECORDS
        self.where = f"s3://{self.bucket}/{self.prefix}"
        self.backend = S3Backend(bucket=self.bucket, max_concurrency=max_concurrency, **location.options)

    def put(self, name: str, data: bytes) -> None:
        key = self.prefix + name
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        self._call(
            lambda: self.backend.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=checksum,  # the store checks every byte it keeps
                ContentType="application/json",
            ),
            what=f"s3://{self.bucket}/{key}",
        )

    def list_after(self, start: str) -> list[tuple[str, int]]:
        paginator = self.backend.client.get_paginator("list_objects_v2")
        found: list[tuple[str, int]] = []

        def pages() -> list[Any]:
            return list(
                paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, StartAfter=self.prefix + start)
            )

        for page in self._call(pages, what=self.where):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if "/" not in name and parse_name(name):
                    found.append((name, int(item.get("Size", 0))))
        return found

    def get(self, name: str) -> bytes:
        from ..retry import retrying

        where = f"s3://{self.bucket}/{self.prefix}{name}"

        def read() -> bytes:
            data = bytearray()
            for chunk in self.backend.read(where):
                data += chunk
                if len(data) > MAX_RECORD_BYTES:
                    break
            return bytes(data)

        return retrying(read)

    def _call(self, action: Any, *, what: str) -> Any:
        return self.backend._call(action, what=what)

    def close(self) -> None:
        self.backend.close()
