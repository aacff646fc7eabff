"""The embedded local store: content-addressed blobs plus one manifest per job.

Layout under ``<home>/store``::

    blobs/sha256/ab/abcdef…   file contents, named by their sha256 (stored once)
    jobs/<jobID>.json         {name: {"sha256":…, "size":…}} for each published object
    tmp/                      uploads in progress (renamed into blobs/ when complete)

References are ``local://<jobID>[/path]``. ``jupyter-publish serve`` serves the same
store read-only over HTTP on loopback, like Bacalhau's Local publisher.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .. import config
from ..errors import DestinationError, NotFoundError
from .base import RemoteObject, StoredObject, StoreOutcome, Upload

CHUNK = 1024 * 1024


def store_root() -> Path:
    return config.home() / "store"


class LocalBackend:
    """Stores uploads in the content-addressed store under the jupyter-publish home."""

    scheme: ClassVar[str] = "local"

    def __init__(self, *, prefix: str = "", root: Path | None = None, **_ignored: Any) -> None:
        self.root = Path(root) if root else store_root()
        self.prefix = prefix.strip("/")
        for sub in ("blobs/sha256", "jobs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- publish -------------------------------------------------------------------
    def publish(
        self, uploads: Sequence[Upload], progress: Callable[[int], None] | None = None
    ) -> StoreOutcome:
        if not self.prefix:
            raise DestinationError("a local publish needs a job ID to file its results under")
        entries: dict[str, dict[str, Any]] = {}
        objects = []
        for upload in uploads:
            digest, size = self._store_blob(upload)
            entries[upload.name] = {"sha256": digest, "size": size}
            location = f"local://{self.prefix}/{upload.name}"
            objects.append(StoredObject(upload.name, location, self._url(upload.name), {"blob": digest}))
        self._write_json(self.root / "jobs" / f"{self.prefix}.json", entries)
        uri = f"local://{self.prefix}/"
        return StoreOutcome(
            type="local",
            params={"JobID": self.prefix, "Store": str(self.root)},
            uri=uri,
            objects=objects,
            url=self._url(""),
        )

    def _store_blob(self, upload: Upload) -> tuple[str, int]:
        """Copy one upload into the store; identical content is kept once."""
        sha = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out, upload.open() as reader:
                while chunk := reader.read(CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = sha.hexdigest()
            blob = self.blob_path(digest)
            if blob.exists():
                os.unlink(tmp_name)
            else:
                blob.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp_name, 0o444)
                os.replace(tmp_name, blob)
            return digest, size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest[:2] / digest

    @staticmethod
    def _write_json(path: Path, data: Any) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def _url(self, name: str) -> str | None:
        from ..serve import running_server_url

        base = running_server_url()
        return f"{base}/{self.prefix}/{name}" if base else None

    # -- fetch ---------------------------------------------------------------------
    def _job_entries(self, job_id: str) -> dict[str, dict[str, Any]]:
        path = self.root / "jobs" / f"{job_id}.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no job {job_id!r} in the local store at {self.root}") from None

    def list(self, ref: str) -> list[RemoteObject]:
        job_id, _, sub = _split_ref(ref)
        entries = self._job_entries(job_id)
        sub = sub.strip("/")
        found = []
        for name, info in sorted(entries.items()):
            if sub and name != sub and not name.startswith(sub + "/"):
                continue
            rel = name if not sub else (Path(name).name if name == sub else name[len(sub) + 1 :])
            found.append(
                RemoteObject(
                    name=rel,
                    location=f"local://{job_id}/{name}",
                    size=info["size"],
                    sha256=info["sha256"],
                )
            )
        if not found:
            raise NotFoundError(f"{ref} not found in the local store")
        return found

    def read(self, location: str, offset: int = 0) -> Iterator[bytes]:
        job_id, _, name = _split_ref(location)
        info = self._job_entries(job_id).get(name)
        if info is None:
            raise NotFoundError(f"{location} not found in the local store")
        blob = self.blob_path(info["sha256"])
        if not blob.exists():
            raise NotFoundError(f"{location}: its blob {info['sha256'][:12]}… is missing from the store")
        return _read_from(blob, offset)

    def close(self) -> None:
        pass


def _read_from(path: Path, offset: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(CHUNK):
            yield chunk


def _split_ref(ref: str) -> tuple[str, str, str]:
    if not ref.startswith("local://"):
        raise DestinationError(f"not a local reference: {ref!r} (expected local://JOB_ID/PATH)")
    job_id, sep, rest = ref[len("local://") :].partition("/")
    if not job_id:
        raise DestinationError(f"no job ID in {ref!r}: write local://JOB_ID/PATH")
    return job_id, sep, rest
