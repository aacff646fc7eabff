"""A team's catalog: write a job's record, read what everyone wrote, find one job.

Writing is one ``put`` of a new immutable record (:mod:`.records`); a write that fails
never fails the publish: the record waits in the ledger and the next catalog operation
sends it. Reading lists only names after the newest one read (less a look-back window
for clock skew and slow writes), GETs the new records on a bounded thread pool, verifies
each against its name and caches it (:mod:`.cache`).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import redact
from ..errors import NotFoundError, PublishError
from ..ids import ulid
from ..ledger import Ledger, utc_now
from ..results import PublishedResult
from ..sizes import counted
from . import packs, records
from .cache import CachedRecord, CatalogCache, listed_sizes
from .location import CatalogLocation
from .stores import CatalogStore, open_store

LOOKBACK_MS = 15 * 60 * 1000
"""How far before the newest record read a listing starts again: a writer whose clock is
behind, or whose PUT took long, still lands in it. Names already read are not read again."""
DEFAULT_CONCURRENCY = 32
PACK_REFUSED_FOR = 24 * 3600.0
"""Seconds a reader whose pack the store refused (no PutObject on ``packs/``, or the
store down) waits before it builds and sends another."""
OTHERS_RETRY_AFTER = 600.0
"""Seconds a catalog operation leaves another catalog's waiting records alone after a
try to send them failed after :data:`SLOW_FAILURE` seconds or more (:meth:`Catalog._flush_others`)."""
SLOW_FAILURE = 1.0
"""A failed PUT that took this long waited for a timeout: trying it again costs as much."""
PACK_CONCURRENCY = 4
"""Packs read at once: each is up to :data:`.packs.MAX_PACKED` bytes in memory while read."""
"""Records read at once: each is a small GET, so the link's round trip, not its bandwidth,
bounds a listing; 32 in flight keep a 20 ms link busy."""
JOB_FIELDS = (
    "job_id", "name", "status", "type", "scheme", "destination", "uri", "url", "root_cid",
    "n_files", "total_size", "created_at", "finished_at", "error", "execution_id", "node_id",
)  # fmt: skip
"""The ledger's job columns a record carries (what ``jobs()`` shows)."""


@dataclass
class SyncReport:
    """What one listing did: names listed, records read (GETs), refused, unreadable."""

    listed: int = 0
    read: int = 0
    """Records read one by one (a GET each)."""
    from_packs: int = 0
    """Records taken from packs (a cold start where a reader packed them before)."""
    packed: str | None = None
    """The name of the pack this listing wrote, if any."""
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def job_body(ledger: Ledger, job_id: str) -> dict[str, Any]:
    """The record of a job as the ledger holds it now (its result if published; the
    reason if failed; provenance when recorded). Everything in it was scrubbed on entry,
    but links were kept as the user asked for them: every URL in it is made public
    here (:func:`redact.public_url`), since every catalog reader sees it, for good."""
    from ..ids import current_user
    from ..journal import host_name

    row = ledger.job_row(job_id)
    job = {name: row.get(name) for name in JOB_FIELDS}
    job["scheme"] = row.get("scheme") or row.get("type")
    if job["status"] != "published":
        job["type"] = None
    body: dict[str, Any] = {
        "job_id": row["job_id"],
        "status": row["status"],
        "written_at": utc_now(),
        "user": current_user(),
        "host": host_name(),
        "job": job,
        "result": json.loads(row["result_json"])
        if row["status"] == "published" and row.get("result_json")
        else None,
    }
    provenance = row.get("provenance_json")
    if provenance:  # a failed job's provenance (a published one has it in its result)
        body["provenance"] = json.loads(provenance)
    from ..serve_state import home_token

    public: dict[str, Any] = _public_links(body, home_token())
    return public


def _public_links(value: Any, token: str | None = None) -> Any:
    """``value`` with every URL in it (a string that is one) made public: presigned links,
    access key IDs and links of this home's ``serve`` (``token``: its token) stay in the
    user's own ledger."""
    if isinstance(value, dict):
        return {k: _public_links(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_public_links(v, token) for v in value]
    if not isinstance(value, str):
        return value
    private = "?" in value or "@" in value or "#" in value or (token is not None and token in value)
    if private and _URL.match(value):
        return redact.public_url(value)
    return value


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*$")


def jobs_row(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The ``jobs()`` row of a record, plus who wrote it, from where, and its key."""
    job: dict[str, Any] = record["job"] if isinstance(record.get("job"), dict) else {}
    row = {name: job.get(name) for name in JOB_FIELDS}
    row.update(
        job_id=record["job_id"], status=record.get("status"), user=record.get("user"), host=record.get("host")
    )
    row.update(_provenance_columns(record))
    row["catalog_key"] = name
    return row


def _provenance_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The provenance columns ``jobs()`` shows (notebook, git_commit, duration_s), from a
    record's result or, for a failed job, its own provenance; a value of the wrong type
    (a hand-made record) reads as missing."""
    result = record.get("result")
    found = result.get("provenance") if isinstance(result, dict) else None
    if not isinstance(found, dict):
        found = record.get("provenance")
    facts: dict[str, Any] = found if isinstance(found, dict) else {}
    found_git = facts.get("git")
    git: dict[str, Any] = found_git if isinstance(found_git, dict) else {}
    commit, notebook, duration = git.get("commit"), facts.get("notebook"), facts.get("duration_s")
    return {
        "notebook": notebook if isinstance(notebook, str) else None,
        "git_commit": commit[:12] if isinstance(commit, str) else None,
        "duration_s": duration
        if isinstance(duration, (int, float)) and not isinstance(duration, bool)
        else None,
    }


def warn(text: str) -> None:
    """One line on stderr, secrets masked: a catalog problem never stops the work."""
    from ..redact import scrub

    print(f"jupyter-publish: warning: {scrub(text)}", file=sys.stderr)


class Catalog:
    """One catalog location, read and written through one store and one ledger's cache."""

    def __init__(
        self,
        location: CatalogLocation,
        *,
        ledger: Ledger | None = None,
        max_concurrency: int | None = None,
        one_try: bool = False,
    ) -> None:
        self.location = location
        self.ledger = ledger or Ledger()
        self.concurrency = max_concurrency or DEFAULT_CONCURRENCY
        self.one_try = one_try
        """Every request one short attempt (:func:`.stores.open_store`): a publish's write."""
        self.cache = CatalogCache(self.ledger, location.ident)
        self._store: CatalogStore | None = None

    @property
    def store(self) -> CatalogStore:
        if self._store is None:
            self._store = open_store(self.location, self.concurrency, one_try=self.one_try)
        return self._store

    def key(self, name: str) -> str:
        return f"{self.store.where}{'' if self.store.where.endswith('/') else '/'}{name}"

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------
    def write_job(self, job_id: str) -> str | None:
        """Write ``job_id``'s record; its name, or None if it is kept pending (warned)."""
        body = job_body(self.ledger, job_id)
        error = self.flush_pending()
        if error is None:
            try:
                return self._put(body)
            except PublishError as exc:
                error = str(exc)
        self.keep_pending(job_id, error, body)
        warn(
            f"job {job_id} is recorded here, but its catalog record was not written to {self.location.text} "
            f"({error}); it is kept and sent again by the next catalog operation"
        )
        return None

    def keep_pending(self, job_id: str, reason: str, body: dict[str, Any] | None = None) -> None:
        """Keep ``job_id``'s record in the ledger, to be sent by the next catalog operation
        (a local write, no network: what an interrupted job has time for)."""
        body = body if body is not None else job_body(self.ledger, job_id)
        options = {k: v for k, v in self.location.options.items() if not redact.is_secret_name(k)}
        self.cache.add_pending(self.location.text, options, job_id, records.encode(body), job_id, reason)

    def _put(self, body: dict[str, Any]) -> str:
        """One new record for ``body``, named when it is sent: a record sent late (from
        the pending table) still sorts after everything readers have listed."""
        name, data = records.make(body)
        self.store.put(name, data)
        return name

    def flush_pending(self) -> str | None:
        """Send the records earlier writes could not: this catalog's first (the error that
        stopped them, or None), then every other catalog's the ledger holds some for.

        Every catalog operation that reaches a store (a publish's write, a listing) does
        this, so a record waits only until the next one, whichever catalog it names.
        """
        error = self._flush_own()
        self._flush_others()
        return error

    def _flush_own(self) -> str | None:
        """Send this catalog's waiting records, each claimed first (another process
        flushing at once sends it, not both); the error that stopped it, or None."""
        for name in self.cache.pending():
            claim = self.cache.claim(name)
            if claim is None:
                continue  # sent meanwhile, or being sent by another process
            token, body = claim
            began = time.monotonic()
            try:
                self._put(json.loads(body))
            except PublishError as exc:
                slow = time.monotonic() - began >= SLOW_FAILURE
                self.cache.release(name, token, str(exc), slow=slow)
                return str(exc)
            except BaseException:
                self.cache.release(name, token, None)
                raise
            self.cache.sent(name, token)
        return None

    def _flush_others(self) -> None:
        """Send the records waiting for other catalogs: to each location and options as
        recorded, with this environment's keys (a record never stores one). A catalog
        whose location now resolves elsewhere (the environment names another endpoint)
        is left alone: its records are not this endpoint's.

        Another catalog is housekeeping, not what the user asked for: each is one short
        try, and one whose last try failed slowly (a timeout) is left for
        :data:`OTHERS_RETRY_AFTER` seconds (a quick refusal, a share not mounted yet, is
        tried again by the next operation). A catalog named once whose endpoint never answers cost every later
        listing of a healthy one minutes (botocore's retries times its timeouts), and
        every publish seconds, for as long as its record waited.
        """
        from ..text import one_line
        from .cache import pending_catalogs
        from .location import parse

        for ident, text, options, failed_at in pending_catalogs(self.ledger):
            if ident == self.cache.ident:
                continue
            if failed_at is not None and time.time() - failed_at < OTHERS_RETRY_AFTER:
                continue
            try:
                location = parse(text, options)
                if location.ident != ident:
                    continue
                with Catalog(
                    location, ledger=self.ledger, max_concurrency=self.concurrency, one_try=True
                ) as other:
                    error = other._flush_own()
            except PublishError as exc:
                error = one_line(exc)
            if error is not None:
                warn(f"records waiting for the catalog {text} are still not written ({error})")

    # -- reading -------------------------------------------------------------------
    def sync(self) -> SyncReport:
        """Read the records written since the last listing into the cache.

        A cold start (nothing cached yet) first reads the packs other readers left, then
        lists every record and GETs only those no pack holds.
        """
        error = self.flush_pending()
        if error is not None:
            warn(f"records waiting for the catalog {self.location.text} are still not written ({error})")
        report = SyncReport()
        last = self.cache.last_name()
        packed = self._packed() if last is None else {}
        # A cold reader lists records/ whole: a pack only saves it GETs. Anyone may write a
        # pack naming any range, so one holding a single record must not vouch for all the
        # records before it. Later listings start a little before the newest name read, or
        # before now if that is later (a record named ahead of every clock, by a writer
        # whose clock runs fast, must not push the start past the records written after it).
        base = min(last[:26], ulid()) if last else None
        start = records.written_floor(base, LOOKBACK_MS) if base else ""
        listed = [(n, size) for n, size in self.store.list_after(start) if records.is_name(n)]
        report.listed = len(listed)
        seen = {name for name, _ in listed}
        # What packs hold that records/ no longer lists. A name is only ever a bare record
        # name: ``../other/records/NAME`` in a pack made a reader read (and pack) another
        # catalog on the same share. The names a pack's writer could not use (its
        # ``unread``) are not read: every record that exists is listed, and made-up ones
        # cost a cold reader a GET each (millions gzip to little) and stalled its listing.
        earlier = [(n, len(d)) for n, d in packed.items() if n not in seen and records.is_name(n)]
        candidates = sorted(listed + earlier)
        known = self.cache.known_sizes(start) if last is not None else {}
        for name, size in listed:
            was = known.get(name)
            if was is not None and was != size:
                self.cache.mark(name, f"it changed after it was read ({was} bytes, now {size})")
                report.refused.append(name)
        new = [(name, size) for name, size in candidates if name not in known]
        from_packs = [r for r in (self._from_pack(n, s, packed) for n, s in new if n in packed) if r]
        have = {r.name for r in from_packs}
        fetched = list(self._read_all([(n, size) for n, size in new if n not in have]))
        report.read, report.from_packs = len(fetched), len(from_packs)
        good = [r for r in [*from_packs, *fetched] if r.data is not None or r.problem]
        report.refused += [r.name for r in fetched if r.problem]
        report.failed = [r.name for r in fetched if r.data is None and not r.problem]
        # A record that could not be read (the link broke) is listed again next time: the
        # newest name kept is the first one that failed (it never moves back).
        newest = min(report.failed) if report.failed else (candidates[-1][0] if candidates else None)
        self.cache.store(good, newest)
        problems = dict(self.cache.refused()) if report.refused else {}  # one query, not one per record
        for name in report.refused:
            warn(f"catalog record {self.key(name)} refused: {problems.get(name, 'refused')}")
        if report.failed:
            warn(
                f"{counted(len(report.failed), 'catalog record')} could not be read now, "
                f"e.g. {self.key(report.failed[0])}"
            )
        if not report.failed:  # a pack must not vouch past a record it lacks
            report.packed = self._write_pack()
        return report

    def _packed(self) -> dict[str, bytes]:
        """Every record in the catalog's packs, ``{name: bytes}`` (not verified yet). A pack
        that cannot be used is skipped: the full listing of a cold start reads its records
        one by one instead."""
        listed = [(n, size) for n, size in self.store.list_after("", packs.PACKS) if packs.is_pack(n)]
        names = [n for n, size in listed if size <= packs.MAX_PACKED]
        store = self.store
        unpacking = threading.Lock()  # one pack's unpacked bytes in memory at a time

        def one(name: str) -> tuple[dict[str, bytes], list[str]] | None:
            try:
                data = store.get(name, packs.PACKS)
                with unpacking:
                    return packs.read(name, data)
            except records.TamperedRecordError as exc:
                warn(f"catalog pack {name} ignored: {exc.why}")
            except PublishError:
                pass  # a pack is only a shortcut: its records are read one by one instead
            return None

        found: dict[str, bytes] = {}
        if names:
            with ThreadPoolExecutor(max(1, min(self.concurrency, PACK_CONCURRENCY, len(names)))) as pool:
                for got in pool.map(one, names):
                    if got is not None:
                        found.update(got[0])
        return found

    def _from_pack(self, name: str, size: int, packed: dict[str, bytes]) -> CachedRecord | None:
        """A listed record as a pack holds it, if those bytes are what its name says."""
        data = packed[name]
        if len(data) != size:
            return None
        try:
            record = records.verify(name, data)
        except records.TamperedRecordError:
            return None  # read it alone: that copy decides
        parsed = records.parse_name(name)
        assert parsed is not None
        row = jobs_row(name, record)
        return CachedRecord(
            name, parsed.job_id, parsed.sha256, size, record.get("status"), None, row, data, True,
            listed_sizes(record),
        )  # fmt: skip

    def _write_pack(self) -> str | None:
        """Once this reader holds enough records no pack has (read one by one: a cold
        start, or many incremental listings), leave them as one pack for the next cold
        reader, if it may write. Its name, or None.

        Counted first (no record's bytes loaded); records a listed pack already covers
        are taken as packed, not packed again; a store that refused a pack is not sent
        another for :data:`PACK_REFUSED_FOR` seconds.
        """
        import time

        refused_at = self.cache.packs_refused_at()
        if refused_at is not None and time.time() - refused_at < PACK_REFUSED_FOR:
            return None
        if self.cache.count_unpacked() < packs.MIN_RECORDS:
            return None
        try:
            listed = [(n, size) for n, size in self.store.list_after("", packs.PACKS)]
        except PublishError:
            return None
        covered = self._packed_already(listed, self.cache.unpacked_names())
        if covered:
            self.cache.mark_packed(covered)
            if self.cache.count_unpacked() < packs.MIN_RECORDS:
                return None
        items, refused = self.cache.unpacked()
        items = packs.budget(items)
        name, data = packs.make(items, refused)
        try:
            self.store.put(name, data, packs.PACKS)
        except PublishError:  # read-only (or PutObject-denied) readers just don't leave one
            self.cache.packs_refused(time.time())
            return None
        self.cache.mark_packed([*(n for n, _ in items), *refused])
        return name

    def _packed_already(self, listed: list[tuple[str, int]], names: list[str]) -> set[str]:
        """Those of ``names`` a listed pack holds. A pack's name only claims what it holds:
        one whose range and count may cover some of ``names`` is read to see (once: what
        it holds is then marked packed). Trusting names alone, one pack named as holding a
        billion records of all time stopped every reader from ever leaving a pack."""
        found: set[str] = set()
        for name, size in listed:
            cover = packs.coverage(name)
            if cover is None or size > packs.MAX_PACKED:
                continue
            inside = packs.covered([n for n in names if n not in found], [cover])
            if not inside:
                continue
            try:
                held, _ = packs.read(name, self.store.get(name, packs.PACKS))
            except (records.TamperedRecordError, PublishError):
                continue  # not a pack: it covers nothing
            found.update(n for n in inside if n in held)
        return found

    def _read_all(self, names: list[tuple[str, int]]) -> Iterator[CachedRecord]:
        if not names:
            return iter(())
        workers = max(1, min(self.concurrency, len(names)))
        store = self.store
        if workers == 1:
            return iter([self._read_one(store, n, s) for n, s in names])
        pool = ThreadPoolExecutor(workers, thread_name_prefix="jp-catalog")
        try:
            return iter(list(pool.map(lambda item: self._read_one(store, *item), names)))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _read_one(self, store: CatalogStore, name: str, size: int) -> CachedRecord:
        parsed = records.parse_name(name)
        assert parsed is not None  # stores list record names only
        cached = CachedRecord(name, parsed.job_id, parsed.sha256, size, None, None, None, None)
        if size > records.MAX_RECORD_BYTES:  # as listed: not even read
            cached.problem = records.too_large()
            return cached
        try:
            data = store.get(name)
        except (records.RecordTooLargeError, records.TamperedRecordError) as exc:
            cached.problem = exc.why
            return cached
        except PublishError:
            return cached
        cached.size = len(data)
        try:
            record = records.verify(name, data)
        except records.TamperedRecordError as exc:
            cached.problem = exc.why
            return cached
        cached.data, cached.status, cached.row = data, record.get("status"), jobs_row(name, record)
        cached.sizes = listed_sizes(record)
        return cached

    def rows(self) -> list[dict[str, Any]]:
        """One row per job (its newest published record, else its newest), newest job
        first. A job once published stays so (a failed one may be resumed and published,
        never the reverse): a later record saying otherwise, which anyone who may write
        a record can write, must not show a colleague's published job as failed."""
        newest: dict[str, dict[str, Any]] = {}
        for row in self.cache.rows():
            have = newest.get(row["job_id"])
            rank = (row.get("status") == "published", row["catalog_key"])
            if have is None or rank > (have.get("status") == "published", have["catalog_key"]):
                newest[row["job_id"]] = row
        return [newest[job_id] for job_id in sorted(newest, reverse=True)]

    def records(self, sizes: Collection[int] | None = None) -> list[dict[str, Any]]:
        """Every verified record read so far (their bytes checked again now); with
        ``sizes``, only those that list a file or archive of one of those sizes."""
        out = []
        for cached in self.cache.records() if sizes is None else self.cache.listing(sizes):
            if cached.data is not None:
                try:
                    out.append(records.verify(cached.name, bytes(cached.data)))
                except records.TamperedRecordError:
                    continue
        return out

    def results(self, sizes: Collection[int] | None = None) -> list[PublishedResult]:
        """Every published job's result read so far (what lineage across machines walks,
        and dedup takes candidates from); with ``sizes``, only those that may list a file
        or archive of one of those sizes. A record whose result does not parse is left out."""
        found = [r["result"] for r in self.records(sizes) if isinstance(r.get("result"), dict)]
        parsed = [_parse_result(result) for result in found]
        return [result for result in parsed if result is not None]

    def check_refused(self, job_id: str) -> None:
        """TamperedRecordError if the cache refused a record of ``job_id`` (no network):
        what a caller that found no usable record says instead of "no such job"."""
        found = self.cache.for_job(job_id)
        bad = next((r for r in found if r.problem), None)
        if bad is not None:
            raise self._refusal(bad)

    def _refusal(self, bad: CachedRecord) -> PublishError:
        """Why a cached record was refused, as its own error: too large, or tampered."""
        problem = bad.problem or "refused"
        if problem.startswith(records.TOO_LARGE):
            return records.RecordTooLargeError(self.key(bad.name), problem)
        return records.TamperedRecordError(self.key(bad.name), problem)

    def result(self, job_id: str) -> PublishedResult:
        """The published result of ``job_id`` as the catalog records it, verified."""
        found = self.cache.for_job(job_id)
        if not found or not any(r.status == "published" for r in found):
            self.sync()
            found = self.cache.for_job(job_id)
        if not found:
            raise NotFoundError(f"no job {job_id!r} in the ledger or in the catalog {self.location.text}")
        bad = next((r for r in found if r.problem), None)
        if bad is not None:
            raise self._refusal(bad)
        verified = [(r.name, records.verify(self.key(r.name), bytes(r.data or b""))) for r in found]
        published = [
            (n, rec) for n, rec in verified if rec.get("status") == "published" and rec.get("result")
        ]
        if not published:
            newest = verified[-1][1]
            error = (newest.get("job") or {}).get("error")
            reason = f": {error}" if error else ""
            raise NotFoundError(
                f"job {newest['job_id']} has status {newest.get('status')} in the catalog{reason}"
            )
        if len({records.encode(rec["result"]) for _, rec in published}) > 1:
            keys = ", ".join(self.key(n) for n, _ in published)
            raise records.TamperedRecordError(
                keys, f"they record different results for job {published[0][1]['job_id']}"
            )
        name, record = published[-1]
        result = _parse_result(record["result"])
        if result is None:
            raise records.TamperedRecordError(self.key(name), "its result is not a published result")
        return result


def _parse_result(data: dict[str, Any]) -> PublishedResult | None:
    """A record's result, or None if it is not one (anyone who may write a record may
    write any JSON there: it must not break a listing, a lineage or a publish)."""
    try:
        result = PublishedResult.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    texts = (result.job_id, result.type, result.uri, result.destination, result.name, result.created_at)
    if not all(isinstance(t, str) for t in texts) or not _maybe_text(result.root_cid, result.url):
        return None
    for file in result.all_records():
        size: object = file.size  # typed int, but JSON made it: any type
        if not _maybe_text(file.path, file.kind, file.sha256, file.cid, file.location, file.url):
            return None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or file.path is None:
            return None
    return result


def _maybe_text(*values: object) -> bool:
    return all(v is None or isinstance(v, str) for v in values)
