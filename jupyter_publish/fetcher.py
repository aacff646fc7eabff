"""Fetch results back: resolve a reference, stream, verify, then put in place.

Every object is streamed into a staging folder beside the destination while it is
hashed; it moves into the destination only once its size, sha256 (or IPFS CID) match
what was recorded. A mismatch raises IntegrityError and leaves the destination as it
was. Partial downloads stay in the staging folder and resume with a ranged read.

A fetch holds a lock on its destination (an ``flock`` on ``.NAME.jp-lock`` beside it,
released by the OS if the process dies), so the staging folder belongs to one process
at a time: a second fetch into the same folder waits while the first makes progress,
then finds the verified result in place. Folders are recreated too, empty ones
included: a round trip gives back exactly the tree that was published.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import config
from .backends import BackendBase, RemoteObject, backend_class, for_result_type, register_secrets, scheme_of
from .download import RANGED_MIN, download
from .errors import (
    AmbiguousJobError,
    BackendError,
    CredentialsError,
    DestinationError,
    IntegrityError,
    NotFoundError,
    OptionError,
    PublishError,
    RefError,
    TransientError,
)
from .extract import ARCHIVE_SUFFIXES as ARCHIVE_SUFFIXES  # kept importable from here
from .extract import DEFAULT_MAX_RATIO, archive_suffix, remove_tree
from .hashing import ContentHasher, Digest, hash_file
from .ledger import Ledger
from .progress import Listener, listening, progress_bar, progress_listener
from .results import FetchedFile, FetchResult, PublishedResult
from .sizes import counted
from .transfer import concurrency as checked_concurrency
from .transfer import run_all


@dataclass
class _Item:
    """One object to download and what it must hash to."""

    name: str
    location: str
    size: int | None = None
    sha256: str | None = None
    cid: str | None = None
    archive_of: list[dict[str, Any]] | None = None
    """For an archive: the manifest of the files inside it, checked after extraction."""
    ranged: bool | None = None
    """The store serves byte ranges of it (None: the backend's default, or ask)."""
    cid_version: int | None = None
    """The CID version its result recorded (None: none recorded, read it from ``cid``)."""


@dataclass
class _Plan:
    ref: str
    scheme: str
    items: list[_Item]
    options: dict[str, Any]
    name: str
    job_id: str | None = None
    backend: BackendBase | None = None
    """The backend that listed the reference, reused for the download (one client)."""
    dirs: list[str] = field(default_factory=list)
    """Folders of the published tree (empty ones must be recreated: no file implies them)."""
    root_cid: str | None = None
    """The fetched job's content CID, when a recorded result was fetched (lineage)."""


def fetch(
    ref: Any,
    dest: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    extract: bool = True,
    quiet: bool | None = None,
    ledger: Ledger | None = None,
    max_concurrency: int | None = None,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
    catalog: str | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> FetchResult:
    """Fetch ``ref`` (URI, job ID, PublishedResult, Bacalhau result spec) into ``dest``.

    ``max_concurrency`` objects (or ranges of one large object) move at once (default 10).
    ``max_ratio``: an archive expanding more than this many times its size and past
    1 GiB is refused as a decompression bomb; ``None`` (or 0) lifts that cap for an
    archive you trust (the 50 GiB total cap stays).
    A job ID the ledger does not hold is looked up in ``catalog`` (default
    ``$JUPYTER_PUBLISH_CATALOG``) and checked against the record found there.
    """
    concurrency = checked_concurrency(max_concurrency)
    max_ratio = _checked_ratio(max_ratio)
    register_secrets(options)  # a plugin's token quoted in its error is masked
    options = {**options, "max_concurrency": concurrency}
    ledger = ledger or Ledger()
    found = partial(recorded_result, catalog=catalog, catalog_options=catalog_options, options=options)
    plan = _plan(ref, ledger, options, found)
    backend = plan.backend or backend_class(plan.scheme).for_reading(plan.ref, plan.options, lambda: None)
    try:
        _check_names(plan)
        target = Path(dest) if dest is not None else Path.cwd() / plan.name
        if target.exists() and not target.is_dir():
            raise DestinationError(f"cannot fetch into {target}: it is a file; give a folder with --to")
        with destination_lock(target) as staging:
            try:
                files = _fetch_items(
                    plan, backend, target, staging, verify, extract, quiet, concurrency, max_ratio
                )
                # Folders inside an archive left packed (extract=False) are not made.
                packed = not extract and any(i.archive_of is not None for i in plan.items)
                dirs = [] if packed else _make_dirs(plan.dirs, target)
            except PublishError as exc:
                if not isinstance(exc, NotFoundError | BackendError | CredentialsError):
                    # Unverifiable or unsafe content is never kept; a broken connection keeps
                    # its partial download so the next fetch resumes where this one stopped.
                    remove_tree(staging)
                raise
            remove_tree(staging)
    finally:
        backend.close()
    extracted = next((i.name for i in plan.items if i.archive_of is not None), None) if extract else None
    if not verify:  # nothing was compared with the record: never claim it was
        for fetched in files:
            fetched.verified_against = None
    _note_fetch(plan, ledger, target)
    return FetchResult(plan.ref, target, files, extracted, plan.job_id, checked=verify, dirs=dirs)


def _note_fetch(plan: _Plan, ledger: Ledger, target: Path) -> None:
    """Lineage: what was fetched (its job and content CID when known) and where it went."""
    from .lineage import note_fetch

    job_id, cid = plan.job_id, plan.root_cid
    if job_id is None and "://" in plan.ref:
        job_id = ledger.job_for_uri(plan.ref)
        if job_id is not None and cid is None:
            cid = ledger.job_row(job_id).get("root_cid")
    note_fetch(ledger, ref=plan.ref, job_id=job_id, cid=cid, dest=os.path.realpath(target))


def _checked_ratio(max_ratio: Any) -> float | None:
    """``None`` or 0 lifts the bomb cap; anything else must be a positive number."""
    if max_ratio is None or (not isinstance(max_ratio, bool) and max_ratio == 0):
        return None
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, int | float) or not max_ratio > 0:
        raise OptionError(f"max_ratio must be a positive number, or 0/None for none, not {max_ratio!r}")
    return float(max_ratio)


def _make_dirs(dirs: list[str], target: Path) -> list[Path]:
    """Recreate the published folders (all of them: empty ones have no file to imply them)."""
    made = []
    for name in sorted(set(dirs)):
        path = target / name
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise DestinationError(f"cannot recreate the folder {name!r} in {target}: a file is in the way")
        path.mkdir(parents=True, exist_ok=True)
        made.append(path)
    if not made and not target.exists():
        target.mkdir(parents=True)  # a result of empty folders only still lands somewhere
    return made


# -- planning -------------------------------------------------------------------------


def _check_names(plan: _Plan) -> None:
    """Names come from servers: none may climb out of the destination (``../``, ``/etc``)."""
    from .extract import safe_relative_path

    for item in plan.items:
        item.name = safe_relative_path(item.name, plan.ref).as_posix()
    plan.dirs = [safe_relative_path(d, plan.ref).as_posix() for d in plan.dirs if d.strip("/.")]


def recorded_result(
    job_id: str,
    ledger: Ledger,
    *,
    catalog: str | None,
    catalog_options: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> PublishedResult:
    """A job's result from the ledger, else from the catalog (its record verified there).

    A catalog on S3 that names no endpoint of its own reads with this fetch's S3 options.
    """
    from .catalog import configured, open_catalog, parse

    try:
        found = ledger.job_row(job_id)["job_id"]
    except NotFoundError as exc:
        where = configured(catalog)
        if where is None or isinstance(exc, AmbiguousJobError):
            raise
        location = parse(where, catalog_options).with_job_options("s3", options)
        with open_catalog(location, ledger=ledger) as cat:
            return cat.result(job_id)
    where = configured(catalog) if found != job_id else None
    if where is not None:  # a prefix: job IDs begin with their time, so a colleague's
        # job (the listing the user copied it from) may share it with one of ours
        location = parse(where, catalog_options).with_job_options("s3", options)
        with open_catalog(location, ledger=ledger) as cat:
            others = {r.job_id for r in cat.cache.for_job(job_id)} - {found}  # cached: no network
        if others:
            raise AmbiguousJobError(
                f"job ID {job_id!r} is ambiguous: {found} here, {min(others)} in the catalog; "
                "give more characters"
            )
    return ledger.result(found)


def _plan(
    ref: Any,
    ledger: Ledger,
    options: dict[str, Any],
    find: Callable[[str, Ledger], PublishedResult] | None = None,
) -> _Plan:
    if isinstance(ref, PublishedResult):
        return _plan_result(ref, options)
    if isinstance(ref, dict):
        return _plan_spec(ref, ledger, options)
    if isinstance(ref, os.PathLike):
        ref = os.fspath(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise RefError(f"cannot fetch {ref!r}: give a URI, a job ID or a PublishedResult")
    ref = ref.strip()
    if "://" in ref:
        return _plan_uri(ref, ledger, options)
    return _plan_result(find(ref, ledger) if find is not None else ledger.result(ref), options)


def _plan_spec(spec: dict[str, Any], ledger: Ledger, options: dict[str, Any]) -> _Plan:
    """A Bacalhau published-result spec, verified as far as it allows.

    S3: exactly the recorded ``VersionID``, its bytes checked against ``ChecksumSHA256``
    (a multipart upload's composite checksum covers parts, not the object: size only).
    """
    from .bacalhau import checked_spec  # wrong types in a spec: one line

    fields = _spec_fields(checked_spec(spec))
    cls = for_result_type(fields.get("type", ""))
    uri = cls.spec_uri(fields, options) if cls is not None else None
    if uri is None:
        kind = fields.get("type") or "?"
        raise RefError(f"cannot fetch a published result of type {kind!r} with params {sorted(fields)}")
    expected = _spec_sha256(fields) if cls is not None and cls.spec_checksum else None
    plan = _plan_uri(uri, ledger, options)
    if expected and len(plan.items) != 1:
        # A Key that is a prefix or has glob characters: the checksum is of no one of them,
        # and a recorded checksum is never quietly left unchecked.
        if plan.backend is not None:
            plan.backend.close()
        from .bacalhau import BacalhauDocumentError

        raise BacalhauDocumentError(
            f"the published result's ChecksumSHA256 is of one object, but {uri} names "
            f"{len(plan.items)}; give the one object's Key, or drop the checksum to fetch them all unchecked"
        )
    if expected:
        item = plan.items[0]
        if item.sha256 and item.sha256 != expected:
            if plan.backend is not None:  # a URI's plan keeps the backend that listed it
                plan.backend.close()
            raise IntegrityError(f"sha256 the store reports for {item.location}", expected, item.sha256)
        item.sha256 = expected
    return plan


def _spec_fields(spec: dict[str, Any]) -> dict[str, str]:
    """A spec's fields as text, keyed however Bacalhau or our DataFrame spells them.

    ``VersionID``, ``VersionId``, ``version_id`` -> ``versionid``; Params (or a legacy
    ``S3`` block) merged over the top level; missing values (None, "", NaN) dropped.
    """
    merged: dict[str, Any] = {}
    for block in (spec, spec.get("S3"), spec.get("Params")):
        if isinstance(block, dict):
            merged.update({str(k).replace("_", "").replace("-", "").lower(): v for k, v in block.items()})
    merged["type"] = merged.get("type") or merged.get("storagesource")
    fields = {}
    for name, value in merged.items():
        if value is None or value == "" or (isinstance(value, float) and value != value):
            continue
        if isinstance(value, dict | list | tuple | set | bytes | bytearray):
            continue  # blocks already merged; a structured value is read by no field below
        fields[name] = str(value)
    if fields.get("type"):
        fields["type"] = fields["type"].replace("_", "").replace("-", "").lower()
    return fields


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _spec_sha256(fields: dict[str, str]) -> str | None:
    """The spec's ``ChecksumSHA256`` as hex: Bacalhau writes S3's base64, or hex.

    None when there is none, or it is a multipart composite (``…=-N``), which no
    whole-object digest can be compared with.
    """
    text = (fields.get("checksumsha256") or fields.get("checksum") or "").strip()
    if not text or re.fullmatch(r"[A-Za-z0-9+/]+={0,2}-\d+", text):
        return None
    if _HEX64.fullmatch(text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        from .bacalhau import BacalhauDocumentError

        raise BacalhauDocumentError(
            f"ChecksumSHA256 {text[:80]!r} of the published result is neither 64 hex digits "
            "nor the base64 of a SHA-256; correct it or drop it"
        )
    return raw.hex()


def _plan_result(result: PublishedResult, options: dict[str, Any]) -> _Plan:
    """Exactly what a job published, with the checksums recorded at publish time."""
    scheme = scheme_of(result.uri)
    cls = backend_class(scheme)
    opts = {**cls.fetch_options(result), **options}
    dirs = [f.path for f in result.files if f.kind == "dir"]
    manifest = [f.__dict__ for f in result.files if f.kind == "file"]
    if result.archive is not None:
        a = result.archive
        where = a.location or result.uri
        items = [_Item(a.path, where, a.size, a.sha256, None, manifest, cid_version=result.cid_version)]
    else:
        items = [
            _Item(
                f.path,
                f.location or "",
                f.size,
                f.sha256,
                f.cid if cls.content_addressed else None,
                cid_version=result.cid_version,
            )
            for f in result.files
            if f.kind == "file"
        ]
    return _Plan(
        result.job_id, scheme, items, opts, result.job_id, result.job_id, dirs=dirs, root_cid=result.root_cid
    )


def _plan_uri(ref: str, ledger: Ledger, options: dict[str, Any]) -> _Plan:
    scheme = scheme_of(ref)
    backend = backend_class(scheme).for_reading(ref, options, partial(_recorded_destination, ref, ledger))
    try:
        listed = backend.list(ref)
        remote = [obj for obj in listed if not getattr(obj, "is_dir", False)]
        dirs = [obj.name for obj in listed if getattr(obj, "is_dir", False)]
        recorded = ledger.find_by_locations(obj.location for obj in remote)  # one connection
        for obj in remote:
            if obj.location not in recorded and (row := _recorded_link(obj.location, ledger)):
                recorded[obj.location] = row
        items = [_item_from_remote(obj, recorded.get(obj.location), ledger) for obj in remote]
        dirs += _recorded_dirs(remote, recorded, ledger)
    except BaseException:
        backend.close()
        raise
    return _Plan(ref, scheme, items, options, default_name(ref), backend=backend, dirs=dirs)


def _recorded_dirs(
    remote: list[RemoteObject], recorded: dict[str, dict[str, Any]], ledger: Ledger
) -> list[str]:
    """The folders the ledger recorded for the one plain job these objects belong to.

    A store lists objects, not folders, so an empty folder is known only to the record:
    each is named relative to what was asked for, as the objects are.
    """
    rows = [(obj, recorded[obj.location]) for obj in remote if obj.location in recorded]
    jobs = {row["job_id"] for _, row in rows}
    if len(jobs) != 1 or len(rows) != len(remote) or rows[0][1].get("kind") != "file":
        return []
    obj, row = rows[0]
    path = str(row.get("path") or "")
    if not path.endswith(obj.name):
        return []
    base = path[: len(path) - len(obj.name)]
    return [
        f["path"][len(base) :]
        for f in ledger.files(jobs.pop())
        if f["kind"] == "dir" and f["path"].startswith(base) and len(f["path"]) > len(base)
    ]


def _recorded_link(url: str, ledger: Ledger) -> dict[str, Any] | None:
    """The recorded file an http(s) link the ledger did not hold as such names: a link of
    this home's ``serve`` (its job and path), or a link recorded with another query
    (a presigned URL signed again)."""
    if not url.lower().startswith(("http://", "https://")):
        return None
    from .serve_state import served_file

    served = served_file(url)
    if served is not None:
        return ledger.find_file(*served)
    return ledger.find_by_link(url)


def _recorded_destination(ref: str, ledger: Ledger) -> str | None:
    """The destination of the job that published ``ref``, if the ledger knows it."""
    row = ledger.find_by_location(ref)
    return None if row is None else str(ledger.status(row["job_id"])["destination"])


def _item_from_remote(obj: RemoteObject, recorded: dict[str, Any] | None, ledger: Ledger) -> _Item:
    item = _Item(obj.name, obj.location, obj.size, obj.sha256, obj.cid, ranged=obj.ranged)
    if recorded:
        # What we recorded at publish time wins over what the store says about itself.
        if item.sha256 and item.sha256 != recorded["sha256"]:
            raise IntegrityError(
                f"sha256 the store reports for {obj.location}", recorded["sha256"], item.sha256
            )
        item.sha256 = recorded["sha256"]
        if recorded["kind"] == "archive":
            job_files = [f for f in ledger.files(recorded["job_id"]) if f["kind"] == "file"]
            item.archive_of = job_files
    return item


def default_name(ref: str) -> str:
    """The folder a fetch of ``ref`` fills by default: its last segment, archive suffix
    cut. Never ``.`` or ``..`` (``…/...zip`` cut to ``..`` extracted into the parent of
    the working folder): a name of dots only is ``fetched``."""
    tail = ref.split("://", 1)[-1].rstrip("/").split("?")[0]
    last = tail.rsplit("/", 1)[-1].replace("*", "").replace("?", "") or "fetched"
    suffix = archive_suffix(last)
    name = last[: -len(suffix)] if suffix else last
    return name if name.strip(".") else "fetched"


# -- downloading ----------------------------------------------------------------------


def _fetch_items(
    plan: _Plan,
    backend: BackendBase,
    target: Path,
    staging: Path,
    verify: bool,
    extract: bool,
    quiet: bool | None,
    concurrency: int,
    max_ratio: float | None = None,
) -> list[FetchedFile]:
    total = sum(i.size or 0 for i in plan.items) or None
    ranged_reads = getattr(backend, "ranged_reads", False)
    concurrency = min(concurrency, getattr(backend, "max_concurrency_hint", concurrency))
    with progress_bar(total, f"fetch {plan.name}", quiet=quiet) as progress:

        def get(item: _Item) -> tuple[_Item, Path, Digest] | list[FetchedFile]:
            present = _already_present(item, target, extract)
            if present is not None:
                return present
            part = staging / "objects" / item.name
            ranged = _use_ranges(backend, ranged_reads, item)
            # An archive to unpack is checked by sha256 (its members get CIDs as extracted).
            unpack = extract and _is_archive(item.name) and not item.cid
            hasher = ContentHasher(_cid_version(item), background=not ranged, cid=not unpack)
            try:
                download(
                    backend,
                    item.location,
                    part,
                    hasher,
                    marker=staging / "ranges" / item.name,
                    size=item.size,
                    # Old bytes are kept only when the result will be verified at the end.
                    resumable=verify and bool(item.size and (item.sha256 or item.cid)),
                    ranged=ranged,
                    concurrency=concurrency,
                    progress=progress,
                )
            except BaseException:
                hasher.abandon()
                raise
            if verify:
                _verify(item, hasher)
            return item, part, hasher.finish()

        # Many objects at once; each large one alone, read in parallel ranges inside.
        large = [i for i in plan.items if (i.size or 0) >= RANGED_MIN]
        small = [i for i in plan.items if (i.size or 0) < RANGED_MIN]
        got = run_all([partial(get, item) for item in small], concurrency)
        got += [get(item) for item in large]
    done: list[FetchedFile] = []
    for entry in got:
        if isinstance(entry, list):
            done += entry
            continue
        item, part, digest = entry
        checked = _checked_against(item) if verify else None
        if extract and _is_archive(item.name):
            done += _extract_into(item, part, target, staging, verify, max_ratio)
        else:
            final = target / item.name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
            done.append(FetchedFile(final, digest.size, digest.sha256, checked, item.location, digest.cid))
    return done


def _use_ranges(backend: BackendBase, ranged_reads: bool | None, item: _Item) -> bool:
    """Whether ``item`` is read in parallel ranges: large, and served in ranges."""
    if (item.size or 0) < RANGED_MIN:
        return False
    if item.ranged is None and ranged_reads is None:  # ask the store (an HTTP HEAD)
        try:
            [remote] = backend.list(item.location)
        except TransientError:
            # Already retried as a read is (a stall once): a whole read would only wait
            # for the same hung or failing server as long again.
            raise
        except (PublishError, ValueError):
            return False
        item.ranged = remote.ranged and remote.size == item.size
    return bool(item.ranged if item.ranged is not None else ranged_reads)


def _cid_version(item: _Item) -> int:
    """The version the result recorded, else the one its CID is written in, else 0."""
    if item.cid_version is not None:
        return item.cid_version
    if item.cid:
        from .cid import parse_cid

        return int(parse_cid(item.cid).version)
    return 0


def _verify(item: _Item, hasher: ContentHasher) -> None:
    """Compare what arrived with what was recorded; discard it on any mismatch."""
    digest = hasher.finish()
    if item.size is not None and digest.size != item.size:
        raise IntegrityError(f"size of {item.location}", f"{item.size} bytes", f"{digest.size} bytes")
    if item.sha256 and digest.sha256 != item.sha256:
        raise IntegrityError(f"sha256 of {item.location}", item.sha256, digest.sha256)
    if item.cid:
        from .cid import same_content_cid

        if not same_content_cid(item.cid, digest.cid):
            raise IntegrityError(f"CID of {item.location}", item.cid, digest.cid)


def _checked_against(item: _Item) -> str | None:
    """What the content was checked against: ``sha256``, ``cid`` or ``sha256+cid``."""
    checks = [name for name, value in (("sha256", item.sha256), ("cid", item.cid)) if value]
    return "+".join(checks) or None


def _is_archive(name: str) -> bool:
    """Every archive :mod:`.extract` unpacks is unpacked here (by name: a fetch plans first)."""
    return archive_suffix(name) is not None


def _already_present(item: _Item, target: Path, extract: bool) -> list[FetchedFile] | None:
    """Verified content already at the destination is not downloaded again."""
    if item.archive_of is not None and extract:
        entries = item.archive_of
        found = []
        for entry in entries:
            path = target / entry["path"]
            if not path.is_file() or path.stat().st_size != entry["size"]:
                return None
            if hash_file(str(path)).sha256 != entry["sha256"]:
                return None
            found.append(
                FetchedFile(path, entry["size"], entry["sha256"], "sha256", item.location, entry.get("cid"))
            )
        return found or None
    path = target / item.name
    if not item.sha256 or not path.is_file() or (item.size is not None and path.stat().st_size != item.size):
        return None
    digest = hash_file(str(path))
    if digest.sha256 != item.sha256:
        return None
    return [FetchedFile(path, digest.size, digest.sha256, "sha256", item.location, digest.cid)]


def _extract_into(
    item: _Item, archive: Path, target: Path, staging: Path, verify: bool, max_ratio: float | None
) -> list[FetchedFile]:
    """Unpack a verified archive safely, check each member against the manifest, move in."""
    from .extract import extract_archive

    tree = staging / "tree" / item.name
    remove_tree(tree)
    tree.parent.mkdir(parents=True, exist_ok=True)
    # Each member is hashed while it is written: nothing is read back from disk.
    digests: dict[str, Digest] = {}
    with _busy(staging):  # no progress hook while unpacking: waiters see the lock touched
        extract_archive(archive, tree, digests=digests, cid_version=_cid_version(item), max_ratio=max_ratio)
    expected = {e["path"]: e for e in item.archive_of or []}
    files: list[FetchedFile] = []
    for rel in sorted(digests):
        path = tree / rel
        digest = digests[rel]
        entry = expected.get(rel)
        if verify and entry and entry.get("sha256") and entry["sha256"] != digest.sha256:
            raise IntegrityError(f"sha256 of {rel} inside {item.name}", entry["sha256"], digest.sha256)
        files.append(
            FetchedFile(
                path, digest.size, digest.sha256, "sha256" if entry else None, item.location, digest.cid
            )
        )
    if verify and expected:
        missing = sorted(set(expected) - {f.path.relative_to(tree).as_posix() for f in files})
        if missing:
            raise IntegrityError(
                f"contents of {item.name}", counted(len(expected), "file"), f"missing {missing[0]}"
            )
    if not expected and _checked_against(item):
        for f in files:
            f.verified_against = "sha256 of archive"
    for rel_dir in _folders_in(tree):  # empty ones too: the archive's tree, exactly
        (target / rel_dir).mkdir(parents=True, exist_ok=True)
    placed = []
    for f in files:
        final = target / f.path.relative_to(tree)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f.path, final)
        os.utime(final)  # deterministic archives store mtime 0; the fetch time is more useful
        f.path = final
        placed.append(f)
    return placed


def _folders_in(tree: Path) -> list[str]:
    """Every real folder under ``tree`` (relative, parents first); symlinks are not folders."""
    found: list[str] = []
    for current, subdirs, _files in os.walk(tree):
        base = Path(current).relative_to(tree)
        for name in sorted(subdirs):
            if not os.path.islink(os.path.join(current, name)):
                found.append((base / name).as_posix())
    return found


# -- one fetch per destination -----------------------------------------------------------


LOCK_POLL = 0.05
"""Seconds before the first new attempt at a busy destination lock (then longer)."""
LOCK_POLL_MAX = 1.0
"""The longest wait between two attempts: a long fetch is waited for at little cost."""
LOCK_TOUCH = 0.5
"""The holder marks progress on its lock file at most this often."""


@contextlib.contextmanager
def destination_lock(target: Path) -> Iterator[Path]:
    """Hold the destination for one fetch; yield the staging folder that goes with it.

    The lock is an ``flock`` on ``.NAME.jp-lock`` beside ``target``, so a crashed fetch
    never leaves it held. The holder touches the lock file as bytes arrive (through the
    progress hook) and while it unpacks; a second fetch waits as long as that file or
    the destination changes within the idle limit (a ``stat`` or two per poll, never a
    walk of the staging tree), then finds the verified result in place; a fetch that
    stalls is named in one line. Where the filesystem (or the OS) has no locks, each
    process stages in a folder of its own instead.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.jp-partial"
    lock_path = target.parent / f".{target.name}.jp-lock"
    handle = _acquire(lock_path, target, staging)
    if handle is None:  # no flock here: never share a staging folder, resume or not
        own = target.parent / f".{target.name}.jp-partial-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            yield own
        finally:
            remove_tree(own)
        return
    beat = _Heartbeat(lock_path)
    _HEARTBEATS[staging] = beat
    try:
        with listening(beat.listener(progress_listener.get())):
            yield staging
    finally:
        _HEARTBEATS.pop(staging, None)
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # before unlocking: a waiter then re-opens a fresh file
        handle.close()


class _Heartbeat:
    """The holder's sign of progress for waiters: the lock file's mtime, touched at most
    every ``LOCK_TOUCH`` seconds (a clock read per call otherwise)."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._last = time.monotonic()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < LOCK_TOUCH:
            return
        self._last = now
        with contextlib.suppress(OSError):
            os.utime(self.lock_path)

    def listener(self, previous: Listener | None) -> Listener:
        """A progress listener that beats, then passes the update on (a widget's bar)."""

        def update(done: int, total: int | None) -> None:
            self.beat()
            if previous is not None:
                previous(done, total)

        return update

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Beat from a daemon thread while local work with no progress hook runs (unpacking)."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(LOCK_TOUCH):
                self.beat()

        worker = threading.Thread(target=run, daemon=True, name="jupyter-publish-lock-beat")
        worker.start()
        try:
            yield
        finally:
            stop.set()


_HEARTBEATS: dict[Path, _Heartbeat] = {}
"""The heartbeat of each staging folder this process holds."""


def _busy(staging: Path) -> contextlib.AbstractContextManager[None]:
    beat = _HEARTBEATS.get(staging)
    return beat.busy() if beat is not None else contextlib.nullcontext()


def _acquire(lock_path: Path, target: Path, staging: Path) -> Any:
    """The open, locked lock file, or None when the filesystem or the OS cannot lock."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the caller stages in a folder of its own
        return None

    idle = config.idle_timeout()
    last_seen: tuple[int, ...] | None = None
    changed_at = time.monotonic()
    poll = LOCK_POLL
    while True:
        # 0600 whatever the umask: another account that could open it could flock it and
        # stall this user's fetches. Held open for the whole fetch.
        handle = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), "r+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            seen = _activity(handle, staging, target)
            handle.close()
        except OSError:  # ENOLCK, EOPNOTSUPP: a filesystem without locks
            handle.close()
            return None
        else:
            if _same_file(handle, lock_path):  # not a file the last holder just unlinked
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                return handle
            handle.close()
            continue
        now = time.monotonic()
        if seen != last_seen:
            last_seen, changed_at, poll = seen, now, LOCK_POLL
        elif now - changed_at > idle:
            who = f"process {holder}" if holder else "another process"
            raise DestinationError(
                f"another fetch ({who}) is writing into {target} and made no progress for "
                f"{idle:g} s; wait for it to finish or fetch into another folder"
            )
        time.sleep(min(poll, max(0.0, changed_at + idle - now) + LOCK_POLL))
        poll = min(LOCK_POLL_MAX, poll * 1.5)


def _holder(handle: Any) -> str:
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        text = handle.read(32).strip()
        if text.isdigit():
            return str(text)
    return ""


def _same_file(handle: Any, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


def _activity(handle: Any, staging: Path, target: Path) -> tuple[int, ...]:
    """What changes while the holder makes progress: the lock file (its inode and mtime,
    which the holder touches) and the staging folder's and destination's own mtimes.
    A few ``stat`` calls, whatever the size of the tree being written."""
    seen: list[int] = []
    with contextlib.suppress(OSError):
        st = os.fstat(handle.fileno())
        seen += [st.st_ino, st.st_mtime_ns]
    for top in (staging, target):
        try:
            seen.append(os.stat(top).st_mtime_ns)
        except OSError:
            seen.append(0)
    return tuple(seen)


__all__ = ["destination_lock", "fetch"]
