"""The local ledger's copy of what a catalog holds (the ``catalog_*`` tables).

Each record read is kept with its exact bytes (checked again whenever it is used), so a
listing costs one indexed query plus the GETs of records not read before; a refused one
is kept with why, so fetching its job says so instead of "not found". Records a publish
could not write wait in ``catalog_pending`` until the next catalog operation sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..ledger import Ledger, utc_now


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

    def pending(self) -> list[tuple[str, bytes]]:
        with self.ledger._connect() as db:
            rows = db.execute(
                "SELECT name, body FROM catalog_pending WHERE catalog=? ORDER BY name", (self.ident,)
            ).fetchall()
        return [(r[0], bytes(r[1])) for r in rows]

    def sent(self, name: str) -> None:
        with self.ledger._connect() as db:
            db.execute("DELETE FROM catalog_pending WHERE catalog=? AND name=?", (self.ident, name))

    def failed_again(self, name: str, error: str) -> None:
        with self.ledger._connect() as db:
            db.execute(
                "UPDATE catalog_pending SET attempts=attempts+1, last_error=? WHERE catalog=? AND name=?",
                (error, self.ident, name),
            )


def pending_catalogs(ledger: Ledger) -> list[tuple[str, str, dict[str, Any]]]:
    """``(ident, location, options)`` of every catalog with records still to send."""
    with ledger._connect() as db:
        rows = db.execute("SELECT DISTINCT catalog, location, options_json FROM catalog_pending").fetchall()
    return [(r[0], r[1], json.loads(r[2] or "{}")) for r in rows]
