"""The local ledger's copy of what a catalog holds (the ``catalog_*`` tables).

Each record read is kept with its exact bytes (checked again whenever it is used), so a
listing costs one indexed query plus the GETs of records not read before; a refused one
is kept with why, so fetching its job says so instead of "not found". Records a publish
could not write wait in ``catalog_pending`` (with where to send them, never a key) until
the next catalog operation, of any catalog, sends them; each is claimed before its PUT,
so two processes flushing at once write it once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import AmbiguousJobError
from ..ledger import Ledger, utc_now

INDEXED = -1
"""The ``catalog_sizes`` row every indexed record has (a failed job's lists no file)."""
SIZES_PER_QUERY = 500
"""Sizes looked up in one query (SQLite bounds a statement's parameters)."""


def listed_sizes(record: Any) -> frozenset[int]:
    """The sizes of the files and archive a record's result lists (none for a failed job)."""
    result = record.get("result") if isinstance(record, dict) else None
    if not isinstance(result, dict):
        return frozenset()
    entries = result.get("manifest")  # PublishedResult.to_dict()'s name for its files
    found = [*(entries if isinstance(entries, list) else []), result.get("archive")]
    return frozenset(e["size"] for e in found if isinstance(e, dict) and isinstance(e.get("size"), int))


@dataclass
class CachedRecord:
    name: str
    job_id: str
    sha256: str
    size: int | None
    status: str | None
    problem: str | None
    row: dict[str, Any] | None
    data: bytes | None
    packed: bool = False
    """Read from a pack, or put in one by this ledger's owner: the next pack leaves it out."""
    sizes: frozenset[int] | None = None
    """:func:`listed_sizes` of its record, when it was parsed already (else found later)."""


class CatalogCache:
    """The rows of one catalog (``ident``) in one ledger."""

    def __init__(self, ledger: Ledger, ident: str) -> None:
        self.ledger, self.ident = ledger, ident

    # -- state ---------------------------------------------------------------------
    def last_name(self) -> str | None:
        with self.ledger._connect() as db:
            row = db.execute("SELECT last_name FROM catalog_state WHERE catalog=?", (self.ident,)).fetchone()
        return None if row is None else row[0]

    def known_sizes(self, since: str) -> dict[str, int | None]:
        """Names (and sizes) already read that sort after ``since``: not read again."""
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, size FROM catalog_records WHERE catalog=? AND name > ?", (self.ident, since)
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def store(self, records: Iterable[CachedRecord], last_name: str | None) -> None:
        """Add what a listing read, and move the catalog's newest name, in one transaction."""
        now = utc_now()
        with self.ledger._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO catalog_records"
                " (catalog, name, job_id, sha256, size, status, problem, row_json, record, read_at, packed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        self.ident, r.name, r.job_id, r.sha256, r.size, r.status, r.problem,
                        None if r.row is None else json.dumps(r.row), r.data, now, int(r.packed),
                    )
                    for r in records
                ],
            )  # fmt: skip
            db.executemany(
                "INSERT OR IGNORE INTO catalog_sizes (catalog, size, name) VALUES (?, ?, ?)",
                [
                    (self.ident, size, r.name)
                    for r in records
                    if r.sizes is not None and r.problem is None
                    for size in (*r.sizes, INDEXED)
                ],
            )
            if last_name is not None:
                db.execute(
                    "INSERT INTO catalog_state (catalog, last_name, synced_at) VALUES (?, ?, ?)"
                    " ON CONFLICT(catalog) DO UPDATE SET synced_at=excluded.synced_at,"
                    " last_name=max(coalesce(last_name, ''), excluded.last_name)",
                    (self.ident, last_name, now),
                )

    def mark(self, name: str, problem: str) -> None:
        """A record read before that has since changed: never trusted again."""
        with self.ledger._connect() as db:
            db.execute(
                "UPDATE catalog_records SET problem=? WHERE catalog=? AND name=?", (problem, self.ident, name)
            )

    def count_unpacked(self) -> int:
        """How many verified records were read one by one and are in no pack yet (no
        record's bytes loaded: a listing asks this every time)."""
        with self.ledger._connect() as db:
            (count,) = db.execute(
                "SELECT count(*) FROM catalog_records WHERE catalog=? AND packed=0"
                " AND problem IS NULL AND record IS NOT NULL",
                (self.ident,),
            ).fetchone()
        return int(count)

    def unpacked_names(self) -> list[str]:
        """The names :meth:`count_unpacked` counts, in order (no bytes)."""
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name FROM catalog_records WHERE catalog=? AND packed=0"
                " AND problem IS NULL AND record IS NOT NULL ORDER BY name",
                (self.ident,),
            ).fetchall()
        return [r[0] for r in rows]

    def packs_refused_at(self) -> float | None:
        """When the store last refused a pack from this reader (None: never)."""
        with self.ledger._connect() as db:
            row = db.execute(
                "SELECT pack_refused_at FROM catalog_state WHERE catalog=?", (self.ident,)
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def packs_refused(self, when: float) -> None:
        with self.ledger._connect() as db:
            db.execute(
                "INSERT INTO catalog_state (catalog, pack_refused_at) VALUES (?, ?)"
                " ON CONFLICT(catalog) DO UPDATE SET pack_refused_at=excluded.pack_refused_at",
                (self.ident, when),
            )

    def unpacked(self) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Records read one by one and in no pack yet (verified ones with their bytes, and
        the names of refused ones): what the next pack this reader leaves holds."""
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, record, problem FROM catalog_records WHERE catalog=? AND packed=0"
                " ORDER BY name",
                (self.ident,),
            ).fetchall()
        good = [(r[0], bytes(r[1])) for r in rows if r[2] is None and r[1] is not None]
        return good, [r[0] for r in rows if r[2] is not None]

    def mark_packed(self, names: Iterable[str]) -> None:
        with self.ledger._connect() as db:
            db.executemany(
                "UPDATE catalog_records SET packed=1 WHERE catalog=? AND name=?",
                [(self.ident, n) for n in names],
            )

    # -- reading -------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The jobs row of every verified record (in no order), parsed in one go: 10,000
        separate ``json.loads`` cost a quarter of a listing served from the cache."""
        with self.ledger._connect() as db:
            (text,) = db.execute(
                "SELECT '[' || coalesce(group_concat(row_json, ','), '') || ']' FROM catalog_records"
                " WHERE catalog=? AND problem IS NULL AND row_json IS NOT NULL",
                (self.ident,),
            ).fetchone()
        found: list[dict[str, Any]] = json.loads(text)
        return found

    def refused(self) -> list[tuple[str, str]]:
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, problem FROM catalog_records WHERE catalog=? AND problem IS NOT NULL"
                " ORDER BY name",
                (self.ident,),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def for_job(self, job_id: str) -> list[CachedRecord]:
        """Every record of ``job_id`` (or of the one job a prefix of 6+ characters, or a
        short form ``j-X7K2M9QZ``, names)."""
        from ..ids import short_tail
        from ..ledger import _like_prefix

        tail = short_tail(job_id)
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, job_id, sha256, size, status, problem, row_json, record FROM catalog_records"
                " WHERE catalog=? AND (job_id=? OR (length(?) >= 6 AND job_id LIKE ? ESCAPE '\\')"
                " OR (? IS NOT NULL AND job_id LIKE ? ESCAPE '\\'))"
                " ORDER BY name",
                (self.ident, job_id, job_id, _like_prefix(job_id), tail, "%" + _like_prefix(tail or "")[:-1]),
            ).fetchall()
        found = [
            CachedRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None, r[7])
            for r in rows
        ]
        exact = [r for r in found if r.job_id == job_id]
        if not exact and len({r.job_id for r in found}) > 1:
            raise AmbiguousJobError(f"job ID {job_id!r} is ambiguous in the catalog: give more characters")
        return exact or found

    def records(self) -> list[CachedRecord]:
        """Every verified record's bytes (lineage across machines reads them)."""
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, job_id, sha256, size, status, problem, row_json, record FROM catalog_records"
                " WHERE catalog=? AND problem IS NULL ORDER BY name",
                (self.ident,),
            ).fetchall()
        return [CachedRecord(r[0], r[1], r[2], r[3], r[4], r[5], None, r[7]) for r in rows]

    def listing(self, sizes: Collection[int]) -> list[CachedRecord]:
        """The verified records whose result lists a file or archive of one of ``sizes``:
        an indexed lookup (dedup asks on every publish that could copy; parsing all of
        5,000 cached records cost such a publish 3 seconds)."""
        wanted = sorted({int(n) for n in sizes if int(n) >= 0})
        if not wanted:
            return []
        self._index_sizes()
        found: dict[str, CachedRecord] = {}
        with self.ledger._connect() as db:
            for i in range(0, len(wanted), SIZES_PER_QUERY):
                chunk = wanted[i : i + SIZES_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    "SELECT name, job_id, sha256, size, status, problem, row_json, record"
                    " FROM catalog_records WHERE catalog=? AND problem IS NULL AND name IN"
                    f" (SELECT name FROM catalog_sizes WHERE catalog=? AND size IN ({marks}))",
                    (self.ident, self.ident, *chunk),
                ).fetchall()
                for r in rows:
                    found[r[0]] = CachedRecord(r[0], r[1], r[2], r[3], r[4], r[5], None, r[7])
        return [found[name] for name in sorted(found)]

    def _index_sizes(self) -> None:
        """Index the sizes of records cached without them (by an older version, or read
        without parsing): once each. Only a lookup: the records found are verified when used."""
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, record FROM catalog_records r WHERE catalog=? AND problem IS NULL"
                " AND record IS NOT NULL AND NOT EXISTS"
                " (SELECT 1 FROM catalog_sizes s WHERE s.catalog=r.catalog AND s.name=r.name)",
                (self.ident,),
            ).fetchall()
            if not rows:
                return
            added = []
            for name, data in rows:
                try:
                    sizes = listed_sizes(json.loads(bytes(data)))
                except ValueError:
                    sizes = frozenset()  # unusable anyway: verifying it refuses it
                added += [(self.ident, size, name) for size in (*sizes, INDEXED)]
            db.executemany(
                "INSERT OR IGNORE INTO catalog_sizes (catalog, size, name) VALUES (?, ?, ?)", added
            )

    # -- pending writes ------------------------------------------------------------
    def add_pending(
        self, location: str, options: dict[str, Any], name: str, body: bytes, job_id: str, error: str
    ) -> None:
        """A job's record ``body`` (not yet named: it is named when sent) waits under ``name``
        (the job ID: a newer state of the same job replaces it)."""
        with self.ledger._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO catalog_pending"
                " (catalog, location, options_json, name, body, job_id, created_at, attempts, last_error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (self.ident, location, json.dumps(options), name, body, job_id, utc_now(), error),
            )

    def pending(self) -> list[str]:
        """The names of this catalog's waiting records, oldest job first (each is claimed
        before it is sent: :meth:`claim`)."""
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name FROM catalog_pending WHERE catalog=? ORDER BY name", (self.ident,)
            ).fetchall()
        return [r[0] for r in rows]

    def claim(self, name: str) -> tuple[str, bytes] | None:
        """``(token, body)`` of a waiting record this process may now send, or None: it was
        sent meanwhile, or another sender holds it (two processes flushing at once would
        each write it, under two names). A claim whose holder died on this host, or older
        than :data:`CLAIM_LEASE` seconds, is taken over."""
        import secrets
        import time

        from ..journal import identity

        pid, host, started = identity()
        token = f"{host} {pid} {started or '-'} {secrets.token_hex(4)}"
        with self.ledger._connect() as db:
            row = db.execute(
                "SELECT claimed, claimed_at FROM catalog_pending WHERE catalog=? AND name=?",
                (self.ident, name),
            ).fetchone()
            if row is None or not _claimable(row[0], row[1], host):
                return None
            taken = db.execute(
                "UPDATE catalog_pending SET claimed=?, claimed_at=?"
                " WHERE catalog=? AND name=? AND claimed IS ?",
                (token, time.time(), self.ident, name, row[0]),
            ).rowcount
            if taken != 1:
                return None  # another sender claimed it between the two statements
            (body,) = db.execute(
                "SELECT body FROM catalog_pending WHERE catalog=? AND name=?", (self.ident, name)
            ).fetchone()
        return token, bytes(body)

    def sent(self, name: str, token: str) -> None:
        """The claimed record was written: it waits no more (unless a newer state of its
        job replaced it meanwhile: that row is not this claim's, and is sent next time)."""
        with self.ledger._connect() as db:
            db.execute(
                "DELETE FROM catalog_pending WHERE catalog=? AND name=? AND claimed=?",
                (self.ident, name, token),
            )

    def release(self, name: str, token: str, error: str | None, *, slow: bool = False) -> None:
        """The claimed record was not written (``error``, counted in ``attempts``; None: the
        sender was interrupted): it waits for the next sender. ``slow``: the try waited for
        a timeout, remembered in ``failed_at`` (other catalogs' operations then wait too)."""
        import time

        with self.ledger._connect() as db:
            db.execute(
                "UPDATE catalog_pending SET claimed=NULL, claimed_at=NULL,"
                " attempts=attempts+(? IS NOT NULL), last_error=coalesce(?, last_error),"
                " failed_at=CASE WHEN ? IS NOT NULL THEN ? ELSE failed_at END"
                " WHERE catalog=? AND name=? AND claimed=?",
                (error, error, slow or None, time.time(), self.ident, name, token),
            )


CLAIM_LEASE = 600.0
"""Seconds after which a waiting record's claim is taken over whoever holds it (a sender
on another host sharing this ledger, whose death this host cannot see)."""


def _claimable(claimed: str | None, claimed_at: float | None, host: str) -> bool:
    """Whether a pending row with this claim may be claimed now."""
    import time

    from ..journal import is_alive

    if claimed is None or claimed_at is None or time.time() - claimed_at > CLAIM_LEASE:
        return True
    holder, pid, started = [*claimed.split(" "), "", "", ""][:3]
    if holder != host or not pid.isdigit():
        return False
    return not is_alive(int(pid), None if started == "-" else started)


def pending_catalogs(ledger: Ledger) -> list[tuple[str, str, dict[str, Any], float | None]]:
    """``(ident, location, options, failed_at)`` of every catalog with records still to
    send: where to send them as recorded (options without keys: the sender's environment
    has those), and when a try to send them last failed (None: never after their write)."""
    with ledger._connect() as db:
        rows = db.execute(
            "SELECT catalog, min(location), min(options_json), max(failed_at) FROM catalog_pending"
            " GROUP BY catalog"
        ).fetchall()
    return [(r[0], r[1], json.loads(r[2] or "{}"), r[3]) for r in rows]
