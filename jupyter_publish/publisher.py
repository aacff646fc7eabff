"""The publish pipeline: sources -> bundle -> backend -> verified result -> ledger.

This is the one place that ties the pieces together; backends only move bytes, and
the magics, widgets and command line all call :func:`publish` — a ``%%publish`` cell
through :func:`begin_job`, whose :class:`Job` also records a cell that failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from . import dedup, ids, journal, redact
from . import provenance as _provenance  # the name `provenance` is publish()'s keyword
from .backends import (
    DEFAULT_DESTINATION,
    Backend,
    BatchBackend,
    CopiesExisting,
    ManifestSidecar,
    ObjectBackend,
    PublishTarget,
    StoreOutcome,
    Upload,
    backend_class,
    register_secrets,
    registered_backends,
    secret_options,
)
from .bundle import Bundle, collect, default_name
from .cid import DagNode, cid_params, tree_node
from .destinations import Destination, object_key, parse_destination, placeholder_values, resolve_some
from .destinations import resolve_template as resolve
from .errors import BackendError, OptionError, PublishError, SourceError
from .hashing import ByteSource, ContentHasher, Digest, HashingReader
from .ledger import Ledger, utc_now
from .preflight import preflight as check_destination
from .progress import progress_bar
from .results import FileRecord, PublishedResult
from .transfer import concurrency as checked_concurrency
from .transfer import store_all

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

PathLike = str | os.PathLike[str]


def __getattr__(name: str) -> Any:
    if name == "RESUMABLE":  # the old constant, now each backend's own declaration
        return tuple(cls.scheme for cls in registered_backends() if cls.resumable)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class _Job:
    job_id: str
    execution_id: str
    node_id: str
    values: dict[str, str]


class _Record:
    """What a job records about itself besides its files: provenance and inputs."""

    def __init__(self, facts: dict[str, Any] | _provenance.Pending, inputs: list[dict[str, Any]]) -> None:
        self._facts = facts
        self.inputs = inputs

    @classmethod
    def begin(
        cls,
        ledger: Ledger,
        job: _Job,
        paths: Sequence[PathLike] | PathLike,
        provenance_given: Mapping[str, Any] | None,
        uses: Sequence[Any],
        notebook: str | None,
    ) -> _Record:
        from .lineage import inputs_for  # not `from . import lineage`: jp.lineage is the function

        round_of = (provenance_given or {}).get("round_of")
        if isinstance(round_of, str):  # a sync round: a draft of that job, which records the rest
            return cls({"round_of": round_of, "started_at": utc_now()}, [])
        inputs = inputs_for(ledger, uses, paths)  # a bad `uses` fails before git is asked
        return cls(_provenance.begin(provenance_given, notebook=notebook, placeholders=job.values), inputs)

    @classmethod
    def resumed(cls, ledger: Ledger, job: _Job, paths: Sequence[str]) -> _Record:
        """A resumed job keeps what it recorded when it began, its git commit asked again
        if it was not known yet (a job from before this was recorded gets what is true now)."""
        recorded, inputs = ledger.provenance(job.job_id)
        if not recorded:
            return cls.begin(ledger, job, paths, None, (), None)
        return cls(_provenance.again({**recorded, "resumed_at": utc_now()}), inputs)

    def facts(self) -> dict[str, Any]:
        """Every fact (waiting for git, if it is still being asked)."""
        return self._facts.facts() if isinstance(self._facts, _provenance.Pending) else dict(self._facts)

    def finished(self, status: str) -> dict[str, Any]:
        """The facts of the job that ended now with ``status``, as stored."""
        return _provenance.finished(self.facts(), status)

    def known(self) -> dict[str, Any]:
        """What is known as the job starts, as stored (git too, if it has answered)."""
        known = self._facts.known() if isinstance(self._facts, _provenance.Pending) else self._facts
        return _provenance.public(known)

    def store_failure(self, ledger: Ledger, job_id: str) -> None:
        """A failed job's facts; a ledger that cannot take them leaves the failure being
        reported the one that is raised."""
        with contextlib.suppress(sqlite3.Error, OSError):
            ledger.set_provenance(job_id, self.finished("failed"), self.inputs)


def publish(
    paths: Sequence[PathLike] | PathLike,
    to: str | Destination = DEFAULT_DESTINATION,
    *,
    archive: bool = True,
    name: str | None = None,
    pin: bool = True,
    cid_version: int = 0,
    quiet: bool | None = None,
    notebook: str | None = None,
    ledger: Ledger | None = None,
    job_id: str | None = None,
    max_concurrency: int | None = None,
    compression: str = "gzip",
    skip_unreadable: bool = False,
    follow_symlinks: bool = False,
    hidden: bool = True,
    provenance: Mapping[str, Any] | None = None,
    uses: Sequence[Any] = (),
    catalog: str | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    **backend_opts: Any,
) -> PublishedResult:
    """Publish files/folders/globs to a destination; return IDs, checksums and CIDs.

    ``to`` is a destination of any registered backend (``jupyter-publish publish
    --help`` lists them); the options that backend declares may be passed as keywords.
    ``max_concurrency`` objects move at once (default 10, ``$JUPYTER_PUBLISH_JOBS``);
    ``compression`` is ``gzip`` (``.tar.gz``, the default), ``zstd`` (``.tar.zst``) or
    ``none`` (``.tar``) for archives.
    Anything unreadable under a folder fails the publish before any byte moves, unless
    ``skip_unreadable`` (then ``result.skipped`` lists it); symlinks out of a folder are
    refused unless ``follow_symlinks``; a symlink publishes its target's bytes.
    ``hidden=False`` leaves dotfiles and dotfolders out (``ipfs add -r`` without ``--hidden``).
    ``result.cid_params`` says how every CID was made (``cid_of(path, **params)`` recomputes it).
    Every failure after the destination is understood is recorded as a ``failed`` job.
    ``result.provenance`` says what produced the job (:mod:`.provenance`; ``provenance``
    adds what a caller knows better: ``cell_source``, ``magic_line``, ``notebook``), and
    ``result.inputs`` what it used (:mod:`.lineage`): this process's fetches, fetched
    folders among ``paths``, and ``uses`` (job IDs, CIDs, URIs or paths).
    ``catalog`` (``s3://BUCKET/PREFIX/`` or a folder; default ``$JUPYTER_PUBLISH_CATALOG``,
    ``""`` for none) also gets the job's record, published or failed (:mod:`.catalog`);
    ``catalog_options`` are its S3 options when they differ from the destination's.
    """
    if cid_version not in (0, 1):
        raise OptionError(f"cid_version must be 0 or 1, not {cid_version!r}")
    if compression not in ("gzip", "zstd", "none"):
        raise OptionError(f"compression must be gzip, zstd or none, not {compression!r}")
    concurrency = checked_concurrency(max_concurrency)
    dest = to if isinstance(to, Destination) else parse_destination(to)
    dest = dest.with_options(**backend_opts)
    check_options(dest)
    name = name or default_name(paths)  # the ledger lists it as the archive is named
    job = _new_job(notebook, job_id)
    ledger = ledger or Ledger()
    ledger.reap()  # jobs a killed process left running: interrupted, leftovers cleaned
    settings = {
        "archive": archive,
        "name": name,
        "pin": pin,
        "cid_version": cid_version,
        "max_concurrency": concurrency,
        "compression": compression,
        "skip_unreadable": skip_unreadable,
        "follow_symlinks": follow_symlinks,
        "hidden": hidden,
        **_catalog_settings(catalog, catalog_options),
    }
    spec = _resume_spec(paths, dest, job, settings)
    record = _Record.begin(ledger, job, paths, provenance, uses, notebook)
    _record_start(ledger, job, name, dest, spec, record)
    return _execute(paths, dest, job, ledger, spec, quiet, record=record, catalog_keys=catalog_options)


def _catalog_settings(catalog: str | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalog a job writes its record to, settled now (an argument, else the
    environment), with its options but never a key: what ``resume`` writes to again."""
    from .catalog import configured, parse

    where = configured(catalog)
    if where is None:
        return {}
    parse(where, options)  # a malformed location fails now, before any byte moves; keys are masked
    return {
        "catalog": where,
        "catalog_options": {k: v for k, v in (options or {}).items() if not redact.is_secret_name(k)},
    }


def _to_catalog(
    ledger: Ledger,
    job_id: str,
    settings: Mapping[str, Any],
    dest: Destination,
    keys: Mapping[str, Any] | None,
    interrupted: str | None = None,
) -> None:
    """The job's record, as the ledger now holds it, to its catalog (never raises);
    ``interrupted`` (the reason): only kept in the ledger, sent by the next catalog operation."""
    if not settings.get("catalog"):
        return
    from .catalog import keep_record, write_record

    options = {**(settings.get("catalog_options") or {}), **(keys or {})}
    if interrupted is not None:
        keep_record(
            ledger, job_id, settings["catalog"], options, reason=interrupted,
            job_scheme=dest.scheme, job_options=dest.options,
        )  # fmt: skip
        return
    write_record(
        ledger, job_id, settings["catalog"], options, job_scheme=dest.scheme, job_options=dest.options
    )


def _execute(
    paths: Sequence[PathLike] | PathLike,
    dest: Destination,
    job: _Job,
    ledger: Ledger,
    spec: dict[str, Any],
    quiet: bool | None,
    multipart: journal.MultipartJournal | None = None,
    record: _Record | None = None,
    catalog_keys: Mapping[str, Any] | None = None,
) -> PublishedResult:
    """Run a job the ledger holds as ``running``; record how it ended, whatever happens
    (and in the catalog, if the job has one; after Ctrl-C or SIGTERM, which must end
    now, only kept in the ledger for the next catalog operation to send).

    SIGTERM takes Ctrl-C's path here (:func:`journal.sigterm_as_interrupt`).
    """
    s = spec["settings"]
    to_catalog = partial(_to_catalog, ledger, job.job_id, s, dest, catalog_keys)
    multipart = multipart or journal.MultipartJournal(ledger, job.job_id)
    record = record or _Record({}, [])
    with journal.sigterm_as_interrupt():
        try:
            bundle = collect(
                paths,
                skip_unreadable=s.get("skip_unreadable", False),
                follow_symlinks=s.get("follow_symlinks", False),
                hidden=s.get("hidden", True),
            )
            _check_shards(bundle, s["cid_version"])
            sources = spec.get("sources")
            if "sources" not in spec:
                sources = journal.fingerprint(bundle)
                ledger.set_spec(job.job_id, {**spec, "sources": sources})
            label = _safe_label(s["name"] or bundle.label)
            result = _run(
                bundle, dest, job, label, s["archive"], s["pin"], s["cid_version"], quiet,
                s["max_concurrency"], s["compression"], multipart, sources, ledger,
                partial(_catalog_records, ledger, s, dest, catalog_keys),
            )  # fmt: skip
            result.skipped = list(bundle.skipped)
            result.cid_params = cid_params(s["cid_version"], hidden=s.get("hidden", True), symlinks="follow")
        except PublishError as exc:
            ledger.fail(job.job_id, str(exc))
            record.store_failure(ledger, job.job_id)
            to_catalog()
            raise
        except journal.Terminated:
            ledger.fail(job.job_id, journal.TERMINATED_REASON)
            record.store_failure(ledger, job.job_id)
            to_catalog(interrupted=journal.TERMINATED_REASON)
            journal.remove_temp_files(job.job_id)
            raise
        except KeyboardInterrupt:
            ledger.fail(job.job_id, "interrupted by the user")
            record.store_failure(ledger, job.job_id)
            to_catalog(interrupted="interrupted by the user")
            journal.remove_temp_files(job.job_id)
            raise
        except Exception as exc:
            ledger.fail(job.job_id, f"{type(exc).__name__}: {exc}")
            record.store_failure(ledger, job.job_id)
            to_catalog()
            raise
        result.provenance = record.finished("published")
        result.inputs = [dict(i) for i in record.inputs]
        ledger.finish(result)  # the provenance_json and inputs_json columns too
    to_catalog()
    return _as_shown(result)


def _as_shown(result: PublishedResult) -> PublishedResult:
    """The result without any secret a server echoed into its links (what the ledger
    holds): the card, ``--json`` and the notebook's saved outputs never show one."""
    text = json.dumps(result.to_dict())
    scrubbed = redact.scrub(text, links=False)
    return result if scrubbed == text else PublishedResult.from_dict(json.loads(scrubbed))


def _resume_spec(
    paths: Sequence[PathLike] | PathLike, dest: Destination, job: _Job, settings: dict[str, Any]
) -> dict[str, Any]:
    """What ``resume`` needs to run the same job again: absolute source paths, the
    destination with its placeholder values, options and flags. Never a secret."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return {
        "paths": [os.path.abspath(os.fspath(p)) for p in items],
        "to": dest.text,
        "options": {
            k: v
            for k, v in dest.options.items()
            if k not in secret_options(dest.scheme) and not redact.is_secret_name(k)
        },
        "values": job.values,
        "settings": settings,
    }


def resume(
    job_id: str, *, ledger: Ledger | None = None, quiet: bool | None = None, **backend_opts: Any
) -> PublishedResult:
    """Continue an interrupted (killed) or failed publish under the same job ID.

    Objects a previous run completed are verified (size and checksum) and skipped; an
    open S3 multipart upload continues: its parts are listed, those whose checksum (or
    MD5 ETag) matches the local bytes are kept, only the others are sent. An archive is
    made again; its parts are kept only where the new stream has the same bytes. Refused
    if a source changed since the job started. Explicit keys may be passed again as
    ``backend_opts`` (they are never recorded).
    """
    return resume_job(job_id, ledger=ledger, quiet=quiet, **backend_opts)[0]


def resume_job(
    job_id: str, *, ledger: Ledger | None = None, quiet: bool | None = None, **backend_opts: Any
) -> tuple[PublishedResult, journal.MultipartJournal]:
    """:func:`resume`, also returning the counts of parts kept and sent."""
    ledger = ledger or Ledger()
    # Settle the job's status first (a dead `running` one becomes `interrupted`), so a
    # `jobs` listing in another process cannot change it between this check and the claim.
    ledger.reap(abort_uploads=False)
    row = ledger.job_row(job_id)
    job_id = row["job_id"]
    _check_resumable(row)
    spec = json.loads(row["spec_json"])
    # Options given again (the endpoint the job was published with) replace the recorded ones.
    dest = parse_destination(spec["to"]).with_options(**{**spec["options"], **backend_opts})
    check_options(dest)
    walk = spec["settings"]
    bundle = collect(
        spec["paths"],
        skip_unreadable=walk.get("skip_unreadable", False),
        follow_symlinks=walk.get("follow_symlinks", False),
        hidden=walk.get("hidden", True),
    )
    difference = journal.changed(spec.get("sources") or [], journal.fingerprint(bundle))
    if spec.get("sources") is not None and difference:
        raise SourceError(f"cannot resume job {job_id}: {difference} since it started; publish again")
    if not ledger.claim(job_id, row["status"], row["pid"]):
        raise PublishError(f"job {job_id} is being resumed by another process")
    ledger.reap(keep=job_id)
    job = _Job(job_id, row["execution_id"], row["node_id"], spec["values"])
    multipart = journal.MultipartJournal(ledger, job_id, resuming=True)
    record = _Record.resumed(ledger, job, spec["paths"])
    result = _execute(spec["paths"], dest, job, ledger, spec, quiet, multipart, record)
    return result, multipart


def _check_resumable(row: dict[str, Any]) -> None:
    job_id, status = row["job_id"], row["status"]
    if status == "published":
        raise PublishError(f"job {job_id} is already published: nothing to resume")
    if status == "running":
        same_host = row["host"] == journal.host_name()
        if row["pid"] is None or not same_host or journal.is_alive(row["pid"], row["proc_start"]):
            where = f"process {row['pid']} on {row['host']}" if row["pid"] else "another process"
            raise PublishError(f"job {job_id} is still running ({where}): wait for it or stop it first")
    if not row.get("spec_json"):
        raise PublishError(
            f"job {job_id} has no record of its sources (an older version ran it): publish again"
        )
    scheme = row.get("scheme") or row["type"]  # an older version kept the scheme in type
    if not backend_class(scheme).resumable:
        which = " and ".join(cls.label for cls in registered_backends() if cls.resumable)
        raise PublishError(
            f"job {job_id} went to {scheme}: resume continues {which} publishes only; publish again"
        )


def check_options(dest: Destination) -> None:
    """Refuse an option the destination's backend does not declare (a misplaced
    ``--endpoint`` would otherwise be silently ignored); hand the scrubber the values
    of the secret ones (every publish, begin_job and resume passes here)."""
    register_secrets(dest.options, dest.scheme)
    allowed = set(backend_class(dest.scheme).option_names("publish"))
    unknown = sorted(set(dest.options) - allowed)
    if unknown:
        hint = ", ".join(sorted(allowed)) or "none"
        raise OptionError(
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


def _record_start(
    ledger: Ledger,
    job: _Job,
    name: str | None,
    dest: Destination,
    spec: dict[str, Any] | None = None,
    record: _Record | None = None,
) -> None:
    """The job's ``running`` row: one shape for a publish and for a job that failed before it."""
    ledger.start(
        job_id=job.job_id,
        execution_id=job.execution_id,
        node_id=job.node_id,
        name=name or "results",
        scheme=dest.scheme,
        destination=dest.text,
        spec=spec,
        provenance=record.known() if record is not None else None,
        inputs=record.inputs if record is not None else None,
    )


# -- a job begun before its outputs exist (a %%publish cell) ----------------------------


def record_failure(
    job_id: str,
    to: str | Destination,
    *,
    name: str | None = None,
    reason: str,
    ledger: Ledger | None = None,
    provenance: Mapping[str, Any] | None = None,
    uses: Sequence[Any] = (),
    notebook: str | None = None,
    catalog: str | None = None,
    catalog_options: Mapping[str, Any] | None = None,
) -> None:
    """Record ``job_id`` as ``failed`` with ``reason`` although nothing was published.

    A ``%%publish`` cell that raised is a job that failed, like a publish that failed:
    ``jobs()`` lists it with its reason, and its provenance (the cell, the line, git,
    packages) and inputs (and so does the catalog, if there is one). The row has the
    shape a publish writes.
    """
    from .errors import OptionError

    dest = to if isinstance(to, Destination) else parse_destination(to)
    ledger = ledger or Ledger()
    job = _new_job(notebook, job_id)
    _record_start(ledger, job, name, dest)
    ledger.fail(job_id, reason)
    try:
        record = _Record.begin(ledger, job, (), provenance, uses, notebook)
    except OptionError:  # a bad `uses` was refused when the job began; record the rest
        record = _Record.begin(ledger, job, (), provenance, (), notebook)
    record.store_failure(ledger, job_id)
    _to_catalog(ledger, job_id, _catalog_settings(catalog, catalog_options), dest, catalog_options)


@dataclass(frozen=True)
class Job:
    """A publish whose job ID is chosen before its outputs exist (see :func:`begin_job`).

    Its destination is checked once, and its placeholders resolved once when asked, so
    sync rounds and the final publish share one prefix. How it ends is recorded here:
    :meth:`publish` records a publish, :meth:`fail` a job that failed before it.
    """

    job_id: str
    destination: Destination
    name: str | None = None
    notebook: str | None = None
    ledger: Ledger | None = None
    provenance: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """What the caller knows of the job (``cell_source``, ``magic_line``…: :func:`publish`)."""
    uses: tuple[Any, ...] = field(default=(), compare=False)
    """What the job names as its inputs (``--uses``)."""
    started_at: str | None = field(default=None, compare=False)
    """When the job began (before its outputs existed): its provenance's ``started_at``."""
    catalog: str | None = None
    """Where the job's record goes (:func:`publish`'s ``catalog``); sync rounds write none."""
    catalog_options: Mapping[str, Any] | None = None

    def _facts(self) -> dict[str, Any]:
        facts = dict(self.provenance or {})
        if self.started_at:
            facts.setdefault("started_at", self.started_at)
        return facts

    def publish(self, paths: Sequence[PathLike] | PathLike, **options: Any) -> PublishedResult:
        """:func:`publish` under this job's ID, destination and name; ``provenance`` and
        ``uses`` given here add to the job's own."""
        given = options.pop("provenance", None) or {}
        uses = (*self.uses, *(options.pop("uses", None) or ()))
        return publish(
            paths,
            self.destination,
            name=self.name,
            notebook=self.notebook,
            ledger=self.ledger,
            job_id=self.job_id,
            provenance={**self._facts(), **given},
            uses=uses,
            **{"catalog": self.catalog, "catalog_options": self.catalog_options, **options},
        )

    def publish_round(
        self, paths: Sequence[PathLike] | PathLike, round_number: int, **options: Any
    ) -> PublishedResult:
        """Sync round ``round_number``: a quiet plain publish to this job's destination,
        under a job ID sorting before this job's (:func:`~jupyter_publish.sync.round_job_id`).

        A round is a draft: its provenance is only ``round_of`` (this job) and its times,
        it records no inputs (lineage and dedup skip it), and no catalog record; the
        final publish records everything once."""
        from .sync import round_job_id, round_name

        settings = {
            **options,
            "archive": False,
            "quiet": True,
            "name": round_name(self.name or "results", round_number, self.job_id),  # the ledger's name
            "notebook": self.notebook,
            "ledger": self.ledger,
            "job_id": round_job_id(self.job_id, round_number),
            "provenance": {"round_of": self.job_id},  # a round starts when it runs
            "uses": (),
            "catalog": "",  # drafts: the team's catalog gets the job's final record only
        }
        return publish(paths, self.destination, **settings)

    def record(self) -> dict[str, Any]:
        """This job as the ledger now holds it (status, error, times, destination; the
        JSON blobs left out): what a failed ``%%publish`` cell hands its ``--out`` variable."""
        row = (self.ledger or Ledger()).status(self.job_id)
        return {key: value for key, value in row.items() if not key.endswith("_json")}

    def fail(self, reason: str) -> None:
        """Record this job as failed before anything was published (:func:`record_failure`)."""
        record_failure(
            self.job_id,
            self.destination,
            name=self.name,
            reason=reason,
            ledger=self.ledger,
            provenance=self._facts(),
            uses=self.uses,
            notebook=self.notebook,
            catalog=self.catalog,
            catalog_options=self.catalog_options,
        )


def begin_job(
    to: str | Destination = DEFAULT_DESTINATION,
    *,
    name: str | None = None,
    job_id: str | None = None,
    resolve_placeholders: bool = False,
    notebook: str | None = None,
    ledger: Ledger | None = None,
    provenance: Mapping[str, Any] | None = None,
    uses: Sequence[Any] = (),
    catalog: str | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    preflight: bool = True,
    **backend_opts: Any,
) -> Job:
    """A :class:`Job` for ``to``, its destination and options checked now (a typo, missing
    credentials or an unreachable store fail before any work: :mod:`.preflight`;
    ``preflight=False`` keeps only the offline checks).
    ``resolve_placeholders`` fixes every placeholder but ``{executionID}``
    (which differs per publish) now, so every publish of the job —
    each sync round and the final one — writes under one prefix. ``provenance`` and
    ``uses`` are recorded with the job however it ends (see :func:`publish`); the job's
    provenance starts now.
    """
    dest = to if isinstance(to, Destination) else parse_destination(to)
    dest = dest.with_options(**backend_opts)
    check_options(dest)
    _catalog_settings(catalog, catalog_options)  # a malformed catalog fails now, not after the cell ran
    if uses:  # a reference that names nothing fails now, not after the cell ran
        from .lineage import named_input

        known = ledger or Ledger()
        for ref in uses:
            named_input(known, ref)
    if preflight:  # no credentials, a dead endpoint: said now, not after the cell ran
        check_destination(dest)
    job = _new_job(notebook, job_id)
    if resolve_placeholders:
        values = {k: v for k, v in job.values.items() if k != "executionID"}
        dest = replace(dest, key=resolve_some(dest.key, values), url=resolve_some(dest.url, values))
    return Job(
        job.job_id,
        dest,
        name,
        notebook,
        ledger,
        dict(provenance or {}),
        tuple(uses),
        utc_now(),
        catalog,
        catalog_options,
    )


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
    concurrency: int,
    bundle: Bundle,
    suffix: str = ".tar.gz",
) -> tuple[Backend, str]:
    """The destination's backend configured for this job, and the archive file name."""
    archive_name = f"{label}{suffix}"
    target = PublishTarget(
        job_id=job.job_id,
        archive=archive,
        archive_name=archive_name,
        cid_version=cid_version,
        pin=pin,
        max_concurrency=concurrency,
        dirs=tuple(bundle.dirs),
        file_count=1 if archive else len(bundle.files),
        resolve=partial(resolve, values=job.values),
        object_key=partial(object_key, archive=archive, archive_name=archive_name),
    )
    backend, name = backend_class(dest.scheme).from_destination(dest, target)
    if not isinstance(backend, (ObjectBackend, BatchBackend)):  # a registered class that only reads
        backend.close()
        raise BackendError(f"the {dest.scheme} backend only reads: it has neither put() nor publish()")
    return backend, name


def _run(
    bundle: Bundle,
    dest: Destination,
    job: _Job,
    label: str,
    archive: bool,
    pin: bool,
    cid_version: int,
    quiet: bool | None,
    concurrency: int,
    compression: str,
    multipart: journal.MultipartJournal | None = None,
    sources: list[list[Any]] | None = None,
    ledger: Ledger | None = None,
    records: Callable[[Collection[int]], Sequence[PublishedResult]] = lambda sizes: (),
) -> PublishedResult:
    """Store the bundle; with a ledger, objects the store already holds (as the ledger
    or ``records(sizes)``, a catalog's cached records, says) are copied there instead of sent
    again (:mod:`~jupyter_publish.dedup`)."""
    suffix = {"gzip": ".tar.gz", "zstd": ".tar.zst", "none": ".tar"}[compression]
    backend, archive_name = _make_backend(
        dest, job, archive, label, cid_version, pin, concurrency, bundle, suffix
    )
    if hasattr(backend, "journal"):  # S3: multipart uploads recorded, resumed
        backend.journal = multipart
    readers = _Readers()
    try:
        archive_digest: Digest | None = None
        copy = None
        if archive and ledger is not None:
            copy = _copy_archive(
                backend, ledger, bundle, compression, cid_version, archive_name, quiet, records
            )
        if copy is not None:
            outcome = cast(ObjectBackend, backend).outcome([copy.stored])
            archive_digest, digests = copy.digest, copy.files
            readers.copied(archive_name, copy.digest, record=False)
        elif archive:
            from .archive import ArchiveStream

            with progress_bar(bundle.total_size, f"publish {archive_name}", quiet=quiet) as progress:
                stream = ArchiveStream(
                    bundle, compression=compression, cid_version=cid_version, progress=progress
                )
                # The archive streams straight into the upload: no temp file, and its own
                # sha256 and CID are computed by the reader that feeds the backend.
                opener = readers.opener(archive_name, lambda: stream, None, cid_version)
                remake = partial(_remake_archive, bundle, sources, compression)
                uploads = [Upload(archive_name, None, opener, stream.content_type, remake=remake)]
                try:
                    outcome = store_all(backend, uploads, concurrency)
                finally:
                    stream.close()
            readers.check([archive_name])
            archive_digest = readers.digests[archive_name]
            digests = stream.digests
        else:
            with progress_bar(bundle.total_size, f"publish {label}", quiet=quiet) as progress:
                uploads = _file_uploads(bundle, cid_version, progress, readers)
                target: Backend = backend
                if ledger is not None and isinstance(backend, ObjectBackend):
                    target = dedup.copying(
                        backend, ledger, uploads, cid_version, readers.copied, progress, records
                    )
                outcome = store_all(target, uploads, concurrency)
            readers.check([f.name for f in bundle.files])
            digests = readers.digests
        result = _result(bundle, dest, job, label, outcome, digests, archive_digest, cid_version)
        result.sent_bytes, result.copied_bytes = readers.sent_bytes, readers.copied_bytes
        sent = {archive_name: archive_digest} if archive_digest else digests
        sent_dirs = [] if archive else bundle.dirs
        backend_class(dest.scheme).check_outcome(
            outcome, lambda: _tree({k: v for k, v in sent.items() if v}, sent_dirs, cid_version)[0].cid
        )
        if not archive and isinstance(backend, ManifestSidecar) and backend.sidecar_manifest:
            backend.write_manifest(result.to_dict())
        return result
    finally:
        readers.abandon()
        backend.close()


def _copy_archive(
    backend: Backend,
    ledger: Ledger,
    bundle: Bundle,
    compression: str,
    cid_version: int,
    archive_name: str,
    quiet: bool | None,
    records: Callable[[Collection[int]], Sequence[PublishedResult]] = lambda sizes: (),
) -> dedup.ArchiveCopy | None:
    """The archive as a copy of an identical one the store holds, if the ledger knows one
    there and the archive made again here proves it identical; else None (upload it)."""
    from .archive import CONTENT_TYPE, SUFFIX

    if not isinstance(backend, CopiesExisting) or bundle.total_size < dedup.MIN_COPY_BYTES:
        return None
    # A record of an archive like this one lists every file with its size: the largest
    # one picks the few cached catalog records worth reading.
    largest = max(f.size for f in bundle.files)
    candidates = dedup.archive_candidates(ledger, backend, bundle, SUFFIX[compression], records({largest}))
    if not candidates:
        return None

    def unused() -> BinaryIO:
        raise AssertionError("a copied archive is never read")

    upload = Upload(archive_name, None, unused, CONTENT_TYPE[compression])
    with progress_bar(bundle.total_size, f"compare {archive_name}", quiet=quiet) as progress:
        return dedup.copy_archive(backend, candidates, bundle, compression, cid_version, upload, progress)


def _catalog_records(
    ledger: Ledger,
    settings: Mapping[str, Any],
    dest: Destination,
    keys: Mapping[str, Any] | None,
    sizes: Collection[int],
) -> list[PublishedResult]:
    """The job records the ledger has read from the job's catalog (never the network):
    objects a colleague published there can be copied too. The catalog is read as the
    job's record is written (with the destination's endpoint when it names none), so the
    cache it consults is the one a listing filled. Only records that list a file (or an
    archive) of one of ``sizes`` are read. Unreadable: none."""
    if not settings.get("catalog"):
        return []
    from .catalog import cached_results, parse

    options = {**(settings.get("catalog_options") or {}), **(keys or {})}
    try:
        location = parse(settings["catalog"], options).with_job_options(dest.scheme, dest.options)
        return cached_results(location, ledger, sizes)
    except PublishError:
        return []


def _remake_archive(bundle: Bundle, sources: list[list[Any]] | None, compression: str) -> BinaryIO:
    """The archive made again for a retried upload: the same bytes (it is deterministic),
    not recorded and not counted (the first stream and its reader record the digests, once).

    A source whose size or mtime changed since the job started fails here, naming it,
    before any byte is sent again; a change that kept both is caught by the sha256 of
    the bytes sent again (:class:`~jupyter_publish.retry.Replay`).
    """
    from .archive import ArchiveStream

    difference = journal.changed(sources, journal.fingerprint(bundle)) if sources is not None else None
    if difference:
        raise SourceError(f"{difference} while it was being published; publish again")
    # A raw stream: Upload.remake's BinaryIO names what backends read, not a base class.
    return cast(BinaryIO, ArchiveStream(bundle, compression=compression))


class _Readers:
    """The hashing readers the backend opened, by upload name.

    A backend must open each upload and read it to the end; :meth:`check` proves it did,
    so a result never claims bytes that were not sent. A reader's digest is taken when
    it is closed (its hash worker, if any, stops then), so 20,000 files never hold
    20,000 hashers or threads at once.
    """

    def __init__(self) -> None:
        self.digests: dict[str, Digest] = {}
        self.sizes: dict[str, tuple[int, int | None]] = {}
        """name -> (bytes read, bytes expected or None)."""
        self._open: dict[str, HashingReader] = {}
        self._lock = threading.Lock()
        self.sent_bytes = 0
        """Bytes read through the readers, i.e. handed to the backend to send."""
        self.copied_bytes = 0
        """Bytes of objects the store copied instead (:meth:`copied`)."""

    def opener(
        self,
        name: str,
        source: Callable[[], ByteSource],
        size: int | None,
        cid_version: int,
        progress: Callable[[int], None] | None = None,
    ) -> Callable[[], BinaryIO]:
        """A callable opening ``source()`` through a hashing reader for ``name``."""

        def open_reader() -> BinaryIO:
            # Large inputs hash in a worker thread (overlapping the transfer), small ones
            # inline in the thread that reads them: the hasher decides past 1 MiB.
            hasher = ContentHasher(cid_version, background=True)
            reader = _RecordingReader(source(), hasher, size, progress, name, self)
            with self._lock:
                self._open[name] = reader
            # A raw reader: Upload.open's BinaryIO names what backends read, not a base class.
            return cast(BinaryIO, reader)

        return open_reader

    def copied(self, name: str, digest: Digest, record: bool = True) -> None:
        """``name`` was stored as a copy: its digest (from the proof pass) is recorded as if
        its reader had read it to the end, unless ``record`` is False."""
        with self._lock:
            if record:
                self.digests[name] = digest
                self.sizes[name] = (digest.size, digest.size)
            self.copied_bytes += digest.size

    def closed(self, name: str, reader: HashingReader, at_end: bool) -> None:
        digest = None
        if reader.hasher is not None:
            if at_end:
                digest = reader.hasher.finish()
            else:
                reader.hasher.abandon()
        with self._lock:
            self._open.pop(name, None)
            self.sent_bytes += reader.bytes_read
            self.sizes[name] = (
                reader.bytes_read,
                reader.expected_size if reader.expected_size >= 0 else None,
            )
            if digest is not None:
                self.digests[name] = digest

    def abandon(self) -> None:
        """Stop hash workers of readers a failed publish never closed."""
        with self._lock:
            left = list(self._open.values())
            self._open.clear()
        for reader in left:
            if reader.hasher is not None and not reader.hasher.finished:
                reader.hasher.abandon()

    def check(self, names: list[str]) -> None:
        for name in names:
            if name not in self.sizes:
                raise BackendError(f"the backend never read {name!r}; nothing was recorded")
            sent, expected = self.sizes[name]
            if (expected is not None and sent != expected) or name not in self.digests:
                raise BackendError(
                    f"{name!r} changed during the upload ({sent} bytes sent, "
                    f"{expected} expected); publish again"
                )


class _RecordingReader(HashingReader):
    """A hashing reader that hands its digest to :class:`_Readers` when closed."""

    def __init__(
        self,
        source: ByteSource,
        hasher: ContentHasher,
        size: int | None,
        progress: Callable[[int], None] | None,
        name: str,
        readers: _Readers,
    ) -> None:
        super().__init__(source, hasher, -1 if size is None else size, progress)
        self._name, self._readers, self._at_end = name, readers, False

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if not data and size != 0:
            self._at_end = True
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        count = super().readinto(buffer)
        if not count and memoryview(buffer).nbytes:
            self._at_end = True
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                super().close()
            finally:
                at_end = self._at_end and (self.expected_size < 0 or self.bytes_read == self.expected_size)
                self._readers.closed(self._name, self, at_end)


def _file_uploads(
    bundle: Bundle, cid_version: int, progress: Callable[[int], None] | None, readers: _Readers
) -> list[Upload]:
    return [
        Upload(
            f.name,
            f.size,
            readers.opener(f.name, partial(_open_source, f.path), f.size, cid_version, progress),
            _content_type(f.name),
            path=f.path,
        )
        for f in bundle.files
    ]


def _open_source(path: Path) -> io.BufferedReader:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _content_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _tree(
    digests: dict[str, Digest], dirs: Sequence[str], cid_version: int
) -> tuple[DagNode, dict[str, DagNode]]:
    files: dict[str, DagNode | None] = {name: DagNode(d.cid, d.tsize, d.size) for name, d in digests.items()}
    files.update({d: None for d in dirs})
    return tree_node(files, cid_version)


def _check_shards(bundle: Bundle, cid_version: int) -> None:
    """Fail before any upload if the folder's CID cannot exist (a HAMT hash collision).

    Sharding and shard layout depend only on names and CID lengths (fixed per version),
    so the tree of any same-version placeholder CIDs decides exactly as the real one will.
    """
    if not bundle.files and not bundle.dirs:
        return
    placeholder = DagNode(_PLACEHOLDER[cid_version], 0, 0)
    files: dict[str, DagNode | None] = {f.name: placeholder for f in bundle.files}
    files.update(dict.fromkeys(bundle.dirs))
    tree_node(files, cid_version)


_PLACEHOLDER = {
    0: "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",  # an empty file's CIDv0
    1: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",  # the empty raw block
}


def _result(
    bundle: Bundle,
    dest: Destination,
    job: _Job,
    label: str,
    outcome: StoreOutcome,
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
