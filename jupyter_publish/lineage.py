"""What a job used, and the graph of jobs that used each other's results.

A job's inputs are gathered when it starts, from three places (``via``):

- ``fetch``: every job, CID or URI fetched in this process before the publish (with
  the same ledger), as the fetcher notes them with :func:`note_fetch`;
- ``line``: what the caller names (``uses=[...]``, ``--uses REF``);
- ``source``: a published path inside a folder an earlier fetch wrote, or holding
  one, in any process (the ledger's ``fetches`` table): ``jupyter-publish fetch`` then
  ``jupyter-publish publish`` of what it wrote keeps the chain.

Each input is ``{"ref", "kind", "job_id", "cid", "via"}`` (``kind``: job, cid or uri),
deduplicated. :func:`lineage_edges` is a pure function over records that carry
``job_id``, ``name``, ``created_at``, ``uri``, ``root_cid`` and ``inputs`` (a
:class:`~jupyter_publish.results.PublishedResult`, or a ledger row as
:func:`ledger_records` reads it), so records read from elsewhere (a shared catalog)
join the ledger's.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import AmbiguousJobError, NotFoundError, OptionError
from .ids import short_tail
from .redact import scrub

if TYPE_CHECKING:
    import pandas as pd

    from .ledger import Ledger

log = logging.getLogger(__name__)

KINDS = ("job", "cid", "uri")
VIAS = ("line", "fetch", "source")
EDGE_COLUMNS = [
    "used", "used_job", "used_name", "produced", "produced_name", "produced_at", "kind", "via", "cid",
]  # fmt: skip


def make_input(ref: str, kind: str, job_id: str | None, cid: str | None, via: str) -> dict[str, Any]:
    """One input as recorded (the reference scrubbed like a stored link)."""
    return {"ref": scrub(ref, links=False), "kind": kind, "job_id": job_id, "cid": cid, "via": via}


def kind_of(ref: str) -> str:
    """``job`` for a job ID, ``uri`` for a URI or a path, ``cid`` for a CID."""
    if ref.startswith("j-"):
        return "job"
    if "://" in ref:
        return "uri"
    from .cid import parse_cid
    from .errors import CidError

    try:
        parse_cid(ref)
    except CidError:
        return "uri"
    return "cid"


def _ipfs_cid(ref: str) -> str | None:
    """The CID an ``ipfs://CID/...`` reference names."""
    if not ref.lower().startswith("ipfs://"):
        return None
    head = ref[len("ipfs://") :].split("/", 1)[0]
    return head or None


# -- fetches of this process -----------------------------------------------------------

_lock = threading.Lock()
_fetched: list[tuple[str, dict[str, Any]]] = []
"""(ledger path, input) of every successful fetch of this process, in order."""


def note_fetch(ledger: Ledger, *, ref: str, job_id: str | None, cid: str | None, dest: str) -> None:
    """A fetch succeeded: later publishes in this process used it, and so does a later
    publish, in any process, of the folder it wrote (the ledger's ``fetches``)."""
    kind = "job" if job_id is not None and ref == job_id else kind_of(ref)
    cid = cid or _ipfs_cid(ref)
    import sqlite3

    with _lock:
        _fetched.append((str(ledger.path), make_input(ref, kind, job_id, cid, "fetch")))
    try:
        ledger.record_fetch(ref=ref, kind=kind, job_id=job_id, cid=cid, dest=dest)
    except (sqlite3.Error, OSError, ValueError):  # the fetch is done and verified: never fail it now
        log.debug("could not record the fetch of %s", scrub(ref), exc_info=True)


def fetched_in_process(ledger: Ledger) -> list[dict[str, Any]]:
    """The inputs this process fetched with ``ledger`` so far."""
    where = str(ledger.path)
    with _lock:
        return [dict(entry) for path, entry in _fetched if path == where]


def forget_fetches() -> None:
    """Forget this process's fetches (a test; a kernel starting a new piece of work)."""
    with _lock:
        _fetched.clear()


# -- a job's inputs --------------------------------------------------------------------


def inputs_for(ledger: Ledger, uses: Iterable[Any] = (), paths: Any = ()) -> list[dict[str, Any]]:
    """Everything a job publishing ``paths`` (one path or several) used: named ones, this process's fetches,
    fetched folders among its sources; deduplicated, in that order."""
    found = [named_input(ledger, ref) for ref in uses]
    found += fetched_in_process(ledger)
    found += source_inputs(ledger, paths)
    return dedupe(found)


def named_input(ledger: Ledger, ref: Any) -> dict[str, Any]:
    """An input named by the caller: a job ID (or unique prefix), a CID, a URI, an
    existing path, or a PublishedResult / FetchResult."""
    from .results import FetchResult, PublishedResult

    if isinstance(ref, PublishedResult):
        return make_input(ref.job_id, "job", ref.job_id, ref.root_cid, "line")
    if isinstance(ref, FetchResult):
        if ref.job_id:
            return make_input(ref.job_id, "job", ref.job_id, None, "line")
        ref = ref.ref
    if isinstance(ref, os.PathLike):
        ref = os.fspath(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise OptionError(f"uses takes job IDs, CIDs, URIs or paths, not {ref!r}")
    text = ref.strip()
    kind = kind_of(text)
    if kind == "job":
        try:
            row = ledger.job_row(text)
        except AmbiguousJobError:
            raise  # a prefix of several jobs names none of them
        except NotFoundError:
            return make_input(text, "job", text, None, "line")  # a job recorded elsewhere
        return make_input(row["job_id"], "job", row["job_id"], row.get("root_cid"), "line")
    if kind == "cid":
        return make_input(text, "cid", ledger.job_for_cid(text), text, "line")
    if "://" in text:
        return make_input(text, "uri", ledger.job_for_uri(text), _ipfs_cid(text), "line")
    path = os.path.realpath(os.path.expanduser(text))
    if not os.path.exists(path):
        raise OptionError(
            f"uses {text!r}: not a job ID, a CID, a URI or an existing path (say what the job used)"
        )
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise OptionError(f"uses {text!r}: a path whose name is not UTF-8 cannot be recorded") from None
    fetched = ledger.fetches_touching([path])
    job_id = next((row["job_id"] for row in fetched if row["job_id"]), None)
    return make_input(path, "uri", job_id, None, "line")


def source_inputs(ledger: Ledger, paths: Any) -> list[dict[str, Any]]:
    """Fetches recorded (by any process) into a published path, or into a folder
    holding one: publishing a fetched result again keeps the chain."""
    import glob

    resolved = []
    for item in [paths] if isinstance(paths, str | os.PathLike) else paths:
        if not isinstance(item, str | os.PathLike):
            continue
        try:
            text = os.path.expanduser(os.fspath(item))
            matches = glob.glob(text, recursive=True) if glob.has_magic(text) else [text]
            found = [os.path.realpath(match) for match in matches]
            for path in found:
                path.encode("utf-8")  # no fetch wrote a name the ledger cannot hold
        except (OSError, ValueError):  # a path the publish itself will refuse, naming it
            continue
        resolved += found
    if not resolved:
        return []
    rows = ledger.fetches_touching(dict.fromkeys(resolved))
    return [make_input(r["ref"], r["kind"], r["job_id"], r["cid"], "source") for r in rows]


def dedupe(inputs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each input once, the first kept (a missing job ID or CID filled in from a later
    one). Two inputs are one when they name the same job, or when one names no job and
    shares the other's CID or reference. Two jobs are never one, even with the same CID:
    a fetched result published again unchanged has its source's CID, and both are inputs.
    """
    kept: list[dict[str, Any]] = []
    by_job: dict[str, dict[str, Any]] = {}
    by_other: dict[str, dict[str, Any]] = {}
    for given in inputs:
        entry = dict(given)
        job_id = entry.get("job_id")
        target = by_job.get(str(job_id)) if job_id else None
        if target is None:
            for key in (entry.get("cid"), entry.get("ref")):
                found = by_other.get(str(key)) if key else None
                if found is not None and not (job_id and found.get("job_id")):
                    target = found
                    break
        if target is None:
            target = entry
            kept.append(target)
        else:
            for name in ("job_id", "cid"):
                if not target.get(name) and entry.get(name):
                    target[name] = entry[name]
        if target.get("job_id"):
            by_job.setdefault(str(target["job_id"]), target)
        for key in (target.get("cid"), target.get("ref"), entry.get("cid"), entry.get("ref")):
            if key:
                by_other.setdefault(str(key), target)
    return kept


# -- the graph -----------------------------------------------------------------------------


class LineageRecord(Protocol):
    """What :func:`lineage_edges` reads of a job (a PublishedResult has all of it)."""

    job_id: str
    name: str
    created_at: str
    uri: str
    root_cid: str | None
    inputs: list[dict[str, Any]]


@dataclass
class JobNode:
    """A ledger row as lineage reads it: no manifest parsed."""

    job_id: str
    name: str
    created_at: str
    uri: str
    root_cid: str | None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def ledger_records(ledger: Ledger) -> list[JobNode]:
    """Every published job of ``ledger``, as lineage reads it."""
    nodes = []
    for row in ledger.lineage_rows():
        try:
            inputs = json.loads(row["inputs_json"]) if row["inputs_json"] else []
        except ValueError:
            inputs = []
        nodes.append(
            JobNode(
                job_id=row["job_id"],
                name=row["name"] or "",
                created_at=row["created_at"] or "",
                uri=row["uri"] or "",
                root_cid=row["root_cid"],
                inputs=[i for i in inputs if isinstance(i, dict)] if isinstance(inputs, list) else [],
                params={"CID": row["ipfs_cid"]} if row.get("ipfs_cid") else {},
            )
        )
    return nodes


def lineage_rows(records: Iterable[LineageRecord], job: str) -> list[dict[str, Any]]:
    """The edges (used -> produced) upstream and downstream of ``job``, as dicts.

    Pure: reads only ``records``. Upstream: what ``job`` used, what that used, and so on;
    downstream: the jobs that used ``job``'s result, and theirs. An input names its job
    directly, or through a CID or URI that one of the records has. Cycles are walked once.
    """
    by_id: dict[str, LineageRecord] = {}
    for record in records:
        by_id.setdefault(record.job_id, record)
    start = _resolve(job, by_id)
    by_content: dict[str, str] = {}
    for record in by_id.values():
        for key in (record.root_cid, getattr(record, "params", {}).get("CID"), record.uri):
            if key:
                by_content.setdefault(str(key), record.job_id)

    def used_job(entry: Mapping[str, Any]) -> str | None:
        if entry.get("job_id"):
            return str(entry["job_id"])
        for key in (entry.get("cid"), entry.get("ref")):
            if key and str(key) in by_content:
                return by_content[str(key)]
        return None

    consumers: dict[str, list[tuple[LineageRecord, Mapping[str, Any]]]] = {}
    for record in by_id.values():
        for entry in record.inputs:
            used = used_job(entry)
            if used:
                consumers.setdefault(used, []).append((record, entry))

    edges: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(entry: Mapping[str, Any], produced: LineageRecord) -> None:
        used = used_job(entry)
        ref = str(entry.get("ref") or used or "")
        key = (used or ref, produced.job_id, str(entry.get("via") or ""))
        upstream = by_id.get(used) if used else None
        edges.setdefault(
            key,
            {
                "used": ref,
                "used_job": used,
                "used_name": upstream.name if upstream is not None else None,
                "produced": produced.job_id,
                "produced_name": produced.name,
                "produced_at": produced.created_at,
                "kind": entry.get("kind"),
                "via": entry.get("via"),
                "cid": entry.get("cid") or (upstream.root_cid if upstream is not None else None),
            },
        )

    seen, stack = {start}, [start]
    while stack:  # upstream
        record = by_id[stack.pop()]
        for entry in record.inputs:
            add(entry, record)
            used = used_job(entry)
            if used in by_id and used not in seen:
                seen.add(used)
                stack.append(used)
    seen, stack = {start}, [start]
    while stack:  # downstream
        current = stack.pop()
        for consumer, used_entry in consumers.get(current, []):
            add(used_entry, consumer)
            if consumer.job_id not in seen:
                seen.add(consumer.job_id)
                stack.append(consumer.job_id)
    return sorted(edges.values(), key=lambda e: (str(e["produced_at"]), e["produced"], e["used"]))


def lineage_edges(records: Iterable[LineageRecord], job: str) -> pd.DataFrame:
    """:func:`lineage_rows` as a DataFrame (columns :data:`EDGE_COLUMNS`)."""
    import pandas as pd

    frame = pd.DataFrame(lineage_rows(records, job), columns=EDGE_COLUMNS)
    for column in EDGE_COLUMNS:
        if column == "produced_at":
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601", errors="coerce")
        else:
            frame[column] = frame[column].astype("string")
    return frame


def _resolve(job: str, by_id: Mapping[str, LineageRecord]) -> str:
    """``job`` as one of the records' IDs: exact, a unique prefix of 6 or more, or the
    short form cards and tables show (``j-X7K2M9QZ``)."""
    if job in by_id:
        return job
    tail = short_tail(job)
    matches = (
        [i for i in by_id if i.startswith(job) or (tail is not None and i.endswith(tail))]
        if len(job) >= 6
        else []
    )
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousJobError(f"job ID {job!r} is ambiguous: give more characters")
    raise NotFoundError(f"no published job {job!r} to show the lineage of: see `jupyter-publish jobs`")


def combined(ledger: Ledger, extra: Sequence[LineageRecord] = ()) -> list[LineageRecord]:
    """The ledger's records, then ``extra`` ones (a catalog's) it does not have."""
    nodes: list[LineageRecord] = list(ledger_records(ledger))
    return [*nodes, *extra]


__all__ = [
    "EDGE_COLUMNS",
    "JobNode",
    "LineageRecord",
    "dedupe",
    "fetched_in_process",
    "inputs_for",
    "lineage_edges",
    "lineage_rows",
    "note_fetch",
]
