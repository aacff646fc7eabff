"""Fetch results back: resolve a reference, stream, verify, then put in place.

Every object is streamed into a staging folder beside the destination while it is
hashed; it moves into the destination only once its size, sha256 (or IPFS CID) match
what was recorded. A mismatch raises IntegrityError and leaves the destination as it
was. Partial downloads stay in the staging folder and resume with a ranged read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .backends import RemoteObject, backend_class, known_schemes
from .download import RANGED_MIN, download
from .errors import (
    BackendError,
    CredentialsError,
    DestinationError,
    IntegrityError,
    NotFoundError,
    PublishError,
)
from .hashing import ContentHasher, Digest, hash_file
from .ledger import Ledger
from .progress import progress_bar
from .results import FetchedFile, FetchResult, PublishedResult
from .transfer import DEFAULT_CONCURRENCY, run_all
from .transfer import concurrency as checked_concurrency


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


@dataclass
class _Plan:
    ref: str
    scheme: str
    items: list[_Item]
    options: dict[str, Any]
    name: str
    job_id: str | None = None
    backend: Any = None
    """The backend that listed the reference, reused for the download (one client)."""


def fetch(
    ref: Any,
    dest: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    extract: bool = True,
    quiet: bool | None = None,
    ledger: Ledger | None = None,
    max_concurrency: int | None = None,
    **options: Any,
) -> FetchResult:
    """Fetch ``ref`` (URI, job ID, PublishedResult, Bacalhau result spec) into ``dest``.

    ``max_concurrency`` objects (or ranges of one large object) move at once (default 10).
    """
    concurrency = checked_concurrency(max_concurrency)
    options = {**options, "max_concurrency": concurrency}
    plan = _plan(ref, ledger or Ledger(), options)
    backend = plan.backend or backend_class(plan.scheme)(**_backend_options(plan))
    try:
        _check_names(plan)
        target = Path(dest) if dest is not None else Path.cwd() / plan.name
        if target.exists() and not target.is_dir():
            raise DestinationError(f"cannot fetch into {target}: it is a file; give a folder with --to")
        staging = target.parent / f".{target.name}.jp-partial"
        try:
            files = _fetch_items(plan, backend, target, staging, verify, extract, quiet, concurrency)
        except PublishError as exc:
            if not isinstance(exc, NotFoundError | BackendError | CredentialsError):
                # Unverifiable or unsafe content is never kept; a broken connection keeps
                # its partial download so the next fetch resumes where this one stopped.
                shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        backend.close()
    shutil.rmtree(staging, ignore_errors=True)
    extracted = next((i.name for i in plan.items if i.archive_of is not None), None) if extract else None
    if not verify:  # nothing was compared with the record: never claim it was
        for fetched in files:
            fetched.verified_against = None
    return FetchResult(plan.ref, target, files, extracted, plan.job_id, checked=verify)


# -- planning -------------------------------------------------------------------------


def _check_names(plan: _Plan) -> None:
    """Names come from servers: none may climb out of the destination (``../``, ``/etc``)."""
    from .extract import safe_relative_path

    for item in plan.items:
        item.name = safe_relative_path(item.name, plan.ref).as_posix()


def _plan(ref: Any, ledger: Ledger, options: dict[str, Any]) -> _Plan:
    if isinstance(ref, PublishedResult):
        return _plan_result(ref, options)
    if isinstance(ref, dict):
        from .bacalhau import checked_spec  # wrong types in a spec: one line

        return _plan_uri(_spec_to_uri(checked_spec(ref), options), ledger, options)
    if isinstance(ref, os.PathLike):
        ref = os.fspath(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise DestinationError(f"cannot fetch {ref!r}: give a URI, a job ID or a PublishedResult")
    ref = ref.strip()
    if "://" in ref:
        return _plan_uri(ref, ledger, options)
    return _plan_result(ledger.result(ref), options)


def _spec_to_uri(spec: dict[str, Any], options: dict[str, Any]) -> str:
    """Bacalhau's ``{"Type":…, "Params":…}`` published-result spec -> a URI."""
    kind = str(spec.get("Type") or spec.get("StorageSource") or "").lower()
    params = spec.get("Params") or spec
    if kind == "ipfs" and params.get("CID"):
        return f"ipfs://{params['CID']}"
    if kind == "s3" and params.get("Bucket"):
        if params.get("Endpoint"):
            options.setdefault("endpoint", params["Endpoint"])
        if params.get("Region"):
            options.setdefault("region", params["Region"])
        return f"s3://{params['Bucket']}/{params.get('Key', '')}"
    if kind in {"urldownload", "url"} and params.get("URL"):
        return str(params["URL"])
    if kind == "local" and params.get("JobID"):
        return f"local://{params['JobID']}/"
    raise DestinationError(
        f"cannot fetch a published result of type {kind or '?'!r} with params {sorted(params)}"
    )


def _plan_result(result: PublishedResult, options: dict[str, Any]) -> _Plan:
    """Exactly what a job published, with the checksums recorded at publish time."""
    opts = dict(options)
    if result.type == "s3":
        if result.params.get("Endpoint"):
            opts.setdefault("endpoint", result.params["Endpoint"])
        if result.params.get("Region"):
            opts.setdefault("region", result.params["Region"])
    if result.type == "urlDownload":
        # Credentials go to the drop the user configured them for, not to whatever
        # origin its server named as the download URL.
        opts.setdefault("url", result.destination if "://" in result.destination else "")
    if result.type == "ipfs" and result.params.get("API"):
        opts.setdefault("api", result.params["API"])  # the node it was published to
    scheme = _scheme_of(result.uri)
    manifest = [f.__dict__ for f in result.files if f.kind == "file"]
    if result.archive is not None:
        a = result.archive
        items = [_Item(a.path, a.location or result.uri, a.size, a.sha256, None, manifest)]
    else:
        items = [
            _Item(f.path, f.location or "", f.size, f.sha256, f.cid if result.type == "ipfs" else None)
            for f in result.files
            if f.kind == "file"
        ]
    return _Plan(result.job_id, scheme, items, opts, result.job_id, result.job_id)


def _plan_uri(ref: str, ledger: Ledger, options: dict[str, Any]) -> _Plan:
    scheme = _scheme_of(ref)
    if scheme == "http" and not {"url", "auth", "headers"} & set(options):
        options = {**options, "url": _credential_origin(ref, ledger)}
    backend = backend_class(scheme)(**_backend_options(_Plan(ref, scheme, [], options, "")))
    try:
        remote = backend.list(ref)
        recorded = ledger.find_by_locations(obj.location for obj in remote)  # one connection
        items = [_item_from_remote(obj, recorded.get(obj.location), ledger) for obj in remote]
    except BaseException:
        backend.close()
        raise
    return _Plan(ref, scheme, items, options, default_name(ref), backend=backend)


def _credential_origin(ref: str, ledger: Ledger) -> str:
    """A recorded download URL gets the credentials of the drop it was published to
    (none if its server named another origin); any other URL those of its own origin."""
    row = ledger.find_by_location(ref)
    if row is None:
        return ref
    destination = str(ledger.status(row["job_id"])["destination"])
    return destination if destination.startswith(("http://", "https://")) else ""


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


def _scheme_of(ref: str) -> str:
    """The registered backend scheme of a URI (https is served by the http backend)."""
    scheme = ref.split("://", 1)[0].lower()
    if scheme not in known_schemes():
        raise DestinationError(f"cannot fetch {ref!r}: use s3://, ipfs://, http(s)://, local:// or a job ID")
    return "http" if scheme == "https" else scheme


def default_name(ref: str) -> str:
    tail = ref.split("://", 1)[-1].rstrip("/").split("?")[0]
    last = tail.rsplit("/", 1)[-1].replace("*", "").replace("?", "") or "fetched"
    for suffix in ARCHIVE_SUFFIXES:
        if last.endswith(suffix):
            return last[: -len(suffix)] or "fetched"
    return last


def _backend_options(plan: _Plan) -> dict[str, Any]:
    from .publisher import S3_KEY_OPTIONS

    allowed = {
        "s3": {"endpoint", "region", "profile", *S3_KEY_OPTIONS},
        "ipfs": {"api", "gateway", "timeout"},
        "http": {"headers", "auth", "timeout"},
    }
    opts = {k: v for k, v in plan.options.items() if k in allowed.get(plan.scheme, set()) and v is not None}
    if plan.scheme in ("s3", "http"):
        opts["max_concurrency"] = plan.options.get("max_concurrency", DEFAULT_CONCURRENCY)
    if plan.scheme == "http":
        opts["url"] = plan.options.get("url") or (plan.ref if "://" in plan.ref else "")
    return opts


# -- downloading ----------------------------------------------------------------------


def _fetch_items(
    plan: _Plan,
    backend: Any,
    target: Path,
    staging: Path,
    verify: bool,
    extract: bool,
    quiet: bool | None,
    concurrency: int,
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
            hasher = ContentHasher(_cid_version(item.cid), background=not ranged, cid=not unpack)
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
            done += _extract_into(item, part, target, staging, verify)
        else:
            final = target / item.name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
            done.append(FetchedFile(final, digest.size, digest.sha256, checked, item.location, digest.cid))
    return done


def _use_ranges(backend: Any, ranged_reads: bool | None, item: _Item) -> bool:
    """Whether ``item`` is read in parallel ranges: large, and served in ranges."""
    if (item.size or 0) < RANGED_MIN:
        return False
    if item.ranged is None and ranged_reads is None:  # ask the store (an HTTP HEAD)
        try:
            [remote] = backend.list(item.location)
        except (PublishError, ValueError):
            return False
        item.ranged = remote.ranged and remote.size == item.size
    return bool(item.ranged if item.ranged is not None else ranged_reads)


def _cid_version(cid: str | None) -> int:
    return 1 if cid and not cid.startswith("Qm") else 0


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


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tzst", ".zip", ".tar")


def _is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


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


def _extract_into(item: _Item, archive: Path, target: Path, staging: Path, verify: bool) -> list[FetchedFile]:
    """Unpack a verified archive safely, check each member against the manifest, move in."""
    from .extract import extract_archive

    tree = staging / "tree" / item.name
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(tree)
    tree.parent.mkdir(parents=True, exist_ok=True)
    # Each member is hashed while it is written: nothing is read back from disk.
    digests: dict[str, Digest] = {}
    extract_archive(archive, tree, digests=digests, cid_version=0)
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
                f"contents of {item.name}", f"{len(expected)} files", f"missing {missing[0]}"
            )
    if not expected and _checked_against(item):
        for f in files:
            f.verified_against = "sha256 of archive"
    placed = []
    for f in files:
        rel = f.path.relative_to(tree)
        final = target / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f.path, final)
        os.utime(final)  # deterministic archives store mtime 0; the fetch time is more useful
        f.path = final
        placed.append(f)
    return placed


__all__ = ["fetch"]
