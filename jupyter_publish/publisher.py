"""The publish pipeline: sources -> bundle -> backend -> verified result -> ledger.

This is the one place that ties the pieces together; backends only move bytes, and
the magics, widgets and command line all call :func:`publish`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import config, ids
from .backends import Upload, backend_class
from .bundle import Bundle, collect, write_archive
from .cid import DagNode, tree_node
from .destinations import Destination, object_key, parse_destination, placeholder_values
from .destinations import resolve_template as resolve
from .errors import BackendError, DestinationError, IntegrityError, PublishError
from .hashing import ContentHasher, Digest, HashingReader
from .ledger import Ledger, utc_now
from .progress import progress_bar
from .results import FileRecord, PublishedResult

PathLike = str | os.PathLike[str]

S3_KEY_OPTIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
"""Explicit S3 keys: handed to that one boto3 session, never recorded."""
_BACKEND_OPTIONS: dict[str, set[str]] = {
    "local": set(),
    "s3": {"endpoint", "region", "profile", "presign", *S3_KEY_OPTIONS},
    "ipfs": {"api", "gateway", "timeout"},
    "http": {"method", "headers", "auth", "timeout"},
}


@dataclass
class _Job:
    job_id: str
    execution_id: str
    node_id: str
    values: dict[str, str]


def publish(
    paths: Sequence[PathLike] | PathLike,
    to: str | Destination = "local",
    *,
    archive: bool = True,
    name: str | None = None,
    pin: bool = True,
    cid_version: int = 0,
    quiet: bool | None = None,
    notebook: str | None = None,
    ledger: Ledger | None = None,
    job_id: str | None = None,
    **backend_opts: Any,
) -> PublishedResult:
    """Publish files/folders/globs to a destination; return IDs, checksums and CIDs.

    ``to`` is ``local``, ``s3://bucket/key-template``, ``ipfs://`` or ``http(s)://…``;
    backend options (``endpoint``, ``region``, ``profile``, ``presign``, ``api``,
    ``gateway``, ``method``, ``headers``, ``auth``) may be passed as keywords.
    Every failure after the destination is understood is recorded as a ``failed`` job.
    """
    if cid_version not in (0, 1):
        raise DestinationError(f"cid_version must be 0 or 1, not {cid_version!r}")
    dest = to if isinstance(to, Destination) else parse_destination(to)
    dest = dest.with_options(**backend_opts)
    check_options(dest)
    job = _new_job(notebook, job_id)
    ledger = ledger or Ledger()
    ledger.start(
        job_id=job.job_id,
        execution_id=job.execution_id,
        node_id=job.node_id,
        name=name or "results",
        type=dest.scheme,
        destination=dest.text,
    )
    try:
        bundle = collect(paths)
        label = _safe_label(name or bundle.label)
        result = _run(bundle, dest, job, label, archive, pin, cid_version, quiet)
    except PublishError as exc:
        ledger.fail(job.job_id, str(exc))
        raise
    except KeyboardInterrupt:
        ledger.fail(job.job_id, "interrupted by the user")
        raise
    except Exception as exc:
        ledger.fail(job.job_id, f"{type(exc).__name__}: {exc}")
        raise
    ledger.finish(result)
    return result


def check_options(dest: Destination) -> None:
    allowed = _BACKEND_OPTIONS.get(dest.scheme, set())
    unknown = sorted(set(dest.options) - allowed)
    if unknown:
        hint = ", ".join(sorted(allowed)) or "none"
        raise DestinationError(
            f"option {unknown[0]!r} does not apply to {dest.scheme} destinations (they take: {hint})"
        )


def _new_job(notebook: str | None, job_id: str | None) -> _Job:
    job = _Job(job_id or ids.new_job_id(), ids.new_execution_id(), ids.node_id(), {})
    job.values = placeholder_values(
        job_id=job.job_id,
        execution_id=job.execution_id,
        node_id=job.node_id,
        user=ids.current_user(),
        notebook=notebook or ids.notebook_name(),
        now=datetime.now(timezone.utc),
    )
    return job


def _safe_label(label: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label).strip(".-")
    return cleaned or "results"


def _make_backend(
    dest: Destination,
    job: _Job,
    archive: bool,
    label: str,
    cid_version: int,
    pin: bool,
    bundle_dirs: Sequence[str] = (),
) -> tuple[Any, str]:
    """Instantiate the backend with resolved keys; return it and the archive file name."""
    archive_name = f"{label}.tar.gz"
    opts = dict(dest.options)
    cls = backend_class(dest.scheme)
    if dest.scheme == "local":
        return cls(prefix=job.job_id), archive_name
    if dest.scheme == "s3":
        key = object_key(resolve(dest.key, job.values), archive=archive, archive_name=archive_name)
        if archive:
            archive_name = key.rsplit("/", 1)[-1]
        return cls(bucket=dest.bucket, key=key, **opts), archive_name
    if dest.scheme == "ipfs":
        empty_dirs = () if archive else bundle_dirs
        return cls(cid_version=cid_version, pin=pin, empty_dirs=empty_dirs, **opts), archive_name
    url = resolve(dest.url, job.values)
    if not url.endswith("/"):
        base, _, last = url.rpartition("/")
        if archive and "." in last:
            archive_name, url = last, base + "/"
        else:
            url += "/"
    return cls(url=url, **opts), archive_name


def _run(
    bundle: Bundle,
    dest: Destination,
    job: _Job,
    label: str,
    archive: bool,
    pin: bool,
    cid_version: int,
    quiet: bool | None,
) -> PublishedResult:
    backend, archive_name = _make_backend(dest, job, archive, label, cid_version, pin, bundle.dirs)
    work = Path(tempfile.mkdtemp(prefix=f"{job.job_id}-", dir=_tmp_dir()))
    readers: _Readers | None = None
    try:
        archive_digest: Digest | None = None
        if archive:
            with progress_bar(bundle.total_size, f"archive {label}", quiet=quiet) as progress:
                archive_path = work / archive_name
                digests, archive_digest = write_archive(bundle, archive_path, cid_version, progress)
            with progress_bar(archive_digest.size, f"upload {archive_name}", quiet=quiet) as progress:
                uploads, readers = _archive_upload(archive_name, archive_path, archive_digest, progress)
                outcome = backend.publish(uploads, None)
        else:
            with progress_bar(bundle.total_size, f"publish {label}", quiet=quiet) as progress:
                uploads, readers = _file_uploads(bundle, cid_version, progress)
                outcome = backend.publish(uploads, None)
            digests = readers.digests()
        readers.check()
        result = _result(bundle, dest, job, label, outcome, digests, archive_digest, cid_version)
        _check_ipfs_root(
            outcome, uploads, digests, archive_digest, [] if archive else bundle.dirs, cid_version
        )
        if not archive and getattr(backend, "sidecar_manifest", False):
            backend.write_manifest(result.to_dict())
        return result
    finally:
        if readers is not None:
            readers.abandon()
        shutil.rmtree(work, ignore_errors=True)
        backend.close()


def _tmp_dir() -> Path:
    path = config.home() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Readers:
    """The hashing readers a backend opened, by upload name.

    A backend must open each upload and read it to the end; :meth:`check` proves it did,
    so a result never claims bytes that were not sent.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.opened: dict[str, HashingReader] = {}

    def opener(self, name: str, path: Path, size: int, cid_version: int | None, progress=None):  # type: ignore[no-untyped-def]
        """A callable opening ``path`` through a hashing reader (``cid_version=None``: count only)."""

        def open_reader() -> HashingReader:
            # The hasher (and its worker thread) exists only while this file is read.
            hasher = None if cid_version is None else ContentHasher(cid_version, background=True)
            self.opened[name] = HashingReader(open(path, "rb"), hasher, size, progress)  # noqa: SIM115
            return self.opened[name]

        return open_reader

    def abandon(self) -> None:
        """Stop hash workers of readers a failed publish never finished."""
        for reader in self.opened.values():
            if reader.hasher is not None and not reader.hasher.finished:
                reader.hasher.abandon()

    def digests(self) -> dict[str, Digest]:
        return {n: r.hasher.finish() for n, r in self.opened.items() if r.hasher is not None}

    def check(self) -> None:
        for name in self.names:
            reader = self.opened.get(name)
            if reader is None:
                raise BackendError(f"the backend never read {name!r}; nothing was recorded")
            if reader.bytes_read != reader.expected_size:
                raise BackendError(
                    f"{name!r} changed during the upload ({reader.bytes_read} bytes sent, "
                    f"{reader.expected_size} expected); publish again"
                )


def _archive_upload(
    name: str, path: Path, digest: Digest, progress: Callable[[int], None] | None
) -> tuple[list[Upload], _Readers]:
    """The archive is already hashed: its reader only counts bytes."""
    readers = _Readers([name])
    opener = readers.opener(name, path, digest.size, None, progress)
    return [Upload(name, digest.size, opener, "application/gzip", sha256=digest.sha256)], readers


def _file_uploads(
    bundle: Bundle, cid_version: int, progress: Callable[[int], None] | None
) -> tuple[list[Upload], _Readers]:
    readers = _Readers([f.name for f in bundle.files])
    uploads = [
        Upload(
            f.name,
            f.size,
            readers.opener(f.name, f.path, f.size, cid_version, progress),
            _content_type(f.name),
        )
        for f in bundle.files
    ]
    return uploads, readers


def _content_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _tree(
    digests: dict[str, Digest], dirs: Sequence[str], cid_version: int
) -> tuple[DagNode, dict[str, DagNode]]:
    files: dict[str, DagNode | None] = {name: DagNode(d.cid, d.tsize, d.size) for name, d in digests.items()}
    files.update({d: None for d in dirs})
    return tree_node(files, cid_version)


def _result(
    bundle: Bundle,
    dest: Destination,
    job: _Job,
    label: str,
    outcome: Any,
    digests: dict[str, Digest],
    archive_digest: Digest | None,
    cid_version: int,
) -> PublishedResult:
    located = {o.name: o for o in outcome.objects}
    root, dir_nodes = _tree(digests, bundle.dirs, cid_version)
    records = []
    for name in sorted(digests):
        digest = digests[name]
        obj = located.get(name)
        # Files inside an archive are addressed as ARCHIVE#member.
        location = obj.location if obj else f"{outcome.objects[0].location}#{name}"
        records.append(
            FileRecord(
                name,
                digest.size,
                digest.sha256,
                digest.cid,
                "file",
                location,
                obj.url if obj else None,
            )
        )
    for dir_name, node in sorted(dir_nodes.items()):
        records.append(FileRecord(dir_name or ".", node.size, None, node.cid, "dir"))
    archive_record = None
    if archive_digest is not None:
        obj = outcome.objects[0]
        archive_record = FileRecord(
            obj.name,
            archive_digest.size,
            archive_digest.sha256,
            archive_digest.cid,
            "archive",
            obj.location,
            obj.url,
        )
    return PublishedResult(
        job_id=job.job_id,
        execution_id=job.execution_id,
        node_id=job.node_id,
        type=outcome.type,
        destination=dest.text,
        uri=outcome.uri,
        params=outcome.params,
        files=records,
        created_at=utc_now(),
        name=label,
        url=outcome.url,
        archive=archive_record,
        root_cid=root.cid,
        cid_version=cid_version,
    )


def _check_ipfs_root(
    outcome: Any,
    uploads: Sequence[Upload],
    digests: dict[str, Digest],
    archive_digest: Digest | None,
    empty_dirs: Sequence[str],
    cid_version: int,
) -> None:
    """The daemon's root CID must be the one we computed from the same bytes."""
    remote = outcome.params.get("CID")
    if outcome.type != "ipfs" or not remote:
        return
    sent = {uploads[0].name: archive_digest} if archive_digest else digests
    expected, _ = _tree({k: v for k, v in sent.items() if v}, empty_dirs, cid_version)
    from .cid import same_content_cid

    if not same_content_cid(remote, expected.cid):
        raise IntegrityError("IPFS root CID of the published folder", expected.cid, remote)
