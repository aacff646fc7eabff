"""The job ledger: every publish, successful or not, in one SQLite file.

WAL mode and short transactions let several kernels publish at once. A job is written
as ``running`` before any byte moves and updated to ``published`` or ``failed`` (with a
one-line reason) at the end, so an interrupted publish still leaves a trace.

Costs stay per job, not per file: a job's file rows go in with one ``executemany`` in
one transaction, and lookups by location or URL (one per object when fetching a prefix)
use indexes, so they do not scan every file ever published.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import config
from .errors import AmbiguousJobError, NotFoundError, PublishError
from .events import job_changed
from .ids import new_job_id, short_tail
from .redact import scrub
from .results import DEFAULT_NAME, PublishedResult
from .sync import ROUND_NAME_GLOB

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    execution_id  TEXT NOT NULL,
    node_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    type          TEXT NOT NULL,
    destination   TEXT NOT NULL,
    uri           TEXT,
    url           TEXT,
    root_cid      TEXT,
    n_files       INTEGER,
    total_size    INTEGER,
    created_at    TEXT NOT NULL,
    finished_at   TEXT,
    error         TEXT,
    result_json   TEXT
);
CREATE TABLE IF NOT EXISTS files (
    job_id      TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    size        INTEGER,
    sha256      TEXT,
    cid         TEXT,
    location    TEXT,
    url         TEXT,
    PRIMARY KEY (job_id, kind, path)
);
CREATE INDEX IF NOT EXISTS files_cid ON files(cid);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
CREATE INDEX IF NOT EXISTS files_location ON files(location);
CREATE INDEX IF NOT EXISTS files_url ON files(url) WHERE url IS NOT NULL;
CREATE INDEX IF NOT EXISTS files_size ON files(size);
CREATE TABLE IF NOT EXISTS multipart_uploads (
    upload_id   TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    endpoint    TEXT,
    region      TEXT,
    bucket      TEXT NOT NULL,
    key         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    profile     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS multipart_job ON multipart_uploads(job_id);
CREATE TABLE IF NOT EXISTS fetches (
    fetch_id    INTEGER PRIMARY KEY,
    ref         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    job_id      TEXT,
    cid         TEXT,
    dest        TEXT NOT NULL,
    fetched_at  TEXT NOT NULL,
    pid         INTEGER,
    host        TEXT
);
CREATE INDEX IF NOT EXISTS fetches_dest ON fetches(dest);
CREATE TABLE IF NOT EXISTS catalog_records (
    catalog     TEXT NOT NULL,
    name        TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER,
    status      TEXT,
    problem     TEXT,
    row_json    TEXT,
    record      BLOB,
    read_at     TEXT NOT NULL,
    packed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (catalog, name)
);
CREATE INDEX IF NOT EXISTS catalog_records_job ON catalog_records(job_id);
CREATE TABLE IF NOT EXISTS catalog_sizes (
    catalog     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (catalog, size, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS catalog_sizes_name ON catalog_sizes(catalog, name);
CREATE TABLE IF NOT EXISTS catalog_state (
    catalog     TEXT PRIMARY KEY,
    last_name   TEXT,
    synced_at   TEXT,
    pack_refused_at REAL
);
CREATE TABLE IF NOT EXISTS catalog_pending (
    catalog     TEXT NOT NULL,
    location    TEXT NOT NULL,
    options_json TEXT,
    name        TEXT NOT NULL,
    body        BLOB NOT NULL,
    job_id      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    claimed     TEXT,
    claimed_at  REAL,
    failed_at   REAL,
    PRIMARY KEY (catalog, name)
);
"""
CATALOG_TABLES = ("catalog_records", "catalog_sizes", "catalog_state", "catalog_pending")
"""The shared catalog's local cache (:mod:`jupyter_publish.catalog.cache`): records read
(verified bytes, or why one was refused), the sizes of the files each lists (what dedup
looks up on every publish), the newest name listed per catalog, and records a publish
could not write yet (sent again by the next catalog operation)."""
LIVENESS_COLUMNS = {"pid": "INTEGER", "host": "TEXT", "proc_start": "TEXT", "spec_json": "TEXT"}
"""Added to ``jobs`` for liveness and resume (see :mod:`jupyter_publish.journal`); older
ledgers get them on open, NULL for their jobs (which are then never called dead)."""
UPLOAD_COLUMNS = {"profile": "TEXT", "attempts": "INTEGER NOT NULL DEFAULT 0"}
"""Added to ``multipart_uploads``: the AWS profile the upload was made with (a name, never
a key) to abort it with, and how many aborts failed (stale ones are given up)."""
SCHEME_COLUMN = {"scheme": "TEXT"}
"""Added to ``jobs``: where a job went (``local``, ``s3``, ``ipfs``, ``http``). ``type`` was
that once; it is now the published result's Bacalhau ``Type`` (``urlDownload`` for HTTP),
the same value as :attr:`PublishedResult.type`, and NULL while a job has no result."""
PROVENANCE_COLUMNS = {"provenance_json": "TEXT", "inputs_json": "TEXT"}
"""Added to ``jobs``: what produced the job and what it used (:mod:`.provenance`,
:mod:`.lineage`), for failed jobs too (they have no ``result_json``)."""
PENDING_COLUMNS = {"claimed": "TEXT", "claimed_at": "REAL", "failed_at": "REAL"}
"""Added to ``catalog_pending``: who is sending a waiting record now, since when (a record
is claimed before its PUT, so two processes flushing at once send it once), and when a
later try to send it failed (operations on other catalogs then leave it for a while)."""
STATE_COLUMNS = {"pack_refused_at": "REAL"}
"""Added to ``catalog_state``: when the store last refused a pack this reader wrote (a
reader without PutObject on ``packs/`` does not build and send one on every listing)."""
WAL_ATTEMPTS = 20
"""Switching a brand-new database to WAL can meet ``database is locked`` (FACTS.md)."""


# One indexed lookup per column, forced: with statistics (after an ANALYZE) SQLite
# otherwise prefers scanning every file row (an all-NULL url column looks unselective),
# 12 ms a lookup at 60,000 rows instead of 20 us.
_FIND_BY_LOCATION = (
    "SELECT * FROM files INDEXED BY files_location WHERE location = ? AND sha256 IS NOT NULL"
    " UNION ALL"
    " SELECT * FROM files INDEXED BY files_url WHERE url = ? AND sha256 IS NOT NULL"
    " ORDER BY job_id DESC LIMIT 1"
)

_FIND_BY_SIGNED_LINK = (
    "SELECT * FROM files INDEXED BY files_url WHERE url >= ? AND url < ? AND sha256 IS NOT NULL"
    " UNION ALL"
    " SELECT * FROM files INDEXED BY files_location WHERE location >= ? AND location < ?"
    " AND sha256 IS NOT NULL ORDER BY job_id DESC LIMIT 50"
)
"""Links recorded as ``BASE?…`` (a presigned URL, a token in the query), by index range:
``?`` is followed by ``@`` in every collation SQLite's BINARY ordering uses."""

_SIGNING = ("x-amz-", "x-goog-", "awsaccesskeyid", "signature", "expires")
"""Query parameters a presigned link's signature adds (S3 SigV4 and V2, GCS): signed
again, only these change; any other (``?file=b``, ``?versionId=``) names another object."""


def _unsigned_query(url: str) -> list[tuple[str, str]]:
    query = urllib.parse.urlsplit(url).query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return sorted((k, v) for k, v in pairs if not k.lower().startswith(_SIGNING))


def _spec_text(spec: dict[str, Any] | None) -> str | None:
    """A resume spec as stored: scrubbed, so no secret typed into an option (an endpoint
    URL with a password in it, say) reaches the ledger."""
    return None if spec is None else scrub(json.dumps(spec), links=False)


def _json_text(value: Any) -> str | None:
    """A provenance or inputs record as stored: JSON, every known secret masked."""
    return None if value is None else scrub(json.dumps(value, default=str), links=False)


def _loaded(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _not_a_round(table: str = "") -> str:
    """SQL: the job is not a sync round (a draft of another job: its provenance names it).
    A JSON string cannot hold the unescaped ``"round_of":``, so only the key matches."""
    return f"coalesce(instr({table}provenance_json, '\"round_of\":'), 0) = 0"


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching ``prefix`` literally: ``%`` and ``_`` in it are not wildcards."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _link(text: str | None) -> str | None:
    """A recorded link as stored: a server may echo a secret of ours into the URL it
    answers (``?token=…``); it is masked here as in ``result_json`` (signatures kept)."""
    return None if text is None else scrub(text, links=False)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Ledger:
    """Read and write the ledger at ``path`` (default: ``<home>/ledger.sqlite``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config.home() / "ledger.sqlite"
        if not self.path.exists():
            self._create()
        for name in (self.path.name, self.path.name + "-wal", self.path.name + "-shm"):
            # chmod only, never open(): closing any descriptor of the database drops every
            # POSIX lock this process's SQLite connections hold on it (other threads'
            # transactions then corrupt it), and an empty -shm made here under another
            # process's mmap of it ends that process with SIGBUS. SQLite creates -wal and
            # -shm with the database's own mode (0600 from _create).
            with contextlib.suppress(FileNotFoundError):
                config.tighten(self.path.with_name(name), config.PRIVATE_FILE)
        self._use_wal()
        with self._connect() as db:
            db.executescript(SCHEMA)
            _add_missing_columns(db)

    def _create(self) -> None:
        """Build a complete ledger (WAL, schema) under a private name, then link it in place.

        Many threads or processes may create the same ledger at once (a fresh home, several
        kernels). Switching a shared, brand-new file to WAL while others open it failed
        with ``database is locked``; a file that appears at ``self.path`` is already fully
        initialised instead, and ``link`` (unlike ``rename``) never replaces a ledger
        another creator linked first: the loser just removes its copy.
        """
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            db = sqlite3.connect(tmp, timeout=30)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
            finally:
                db.close()  # the last connection checkpoints and removes the -wal file
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another creator won; its ledger is just as complete
            except OSError:  # no hard links here: rename, unless a creator was first
                if not self.path.exists():
                    os.replace(tmp, self.path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    def _use_wal(self) -> None:
        """Switch the database to WAL once (it is persistent), not on every connection.

        On a brand-new file several writers switching at once can get ``database is
        locked``; and the pragma was ~0.08 ms of every ~0.4 ms connection.
        """
        for attempt in range(WAL_ATTEMPTS):
            db = sqlite3.connect(self.path, timeout=30)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
            finally:
                db.close()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            # Room for a 20,000-file job's index pages (allocated only as used): its rows
            # land in five B-trees at random keys (sha256, CID), which spill a 2 MB cache.
            db.execute("PRAGMA cache_size=-65536")
            db.row_factory = sqlite3.Row
            with db:
                yield db
        finally:
            db.close()

    def start(
        self,
        *,
        job_id: str,
        execution_id: str,
        node_id: str,
        name: str,
        scheme: str,
        destination: str,
        spec: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        inputs: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record a job as ``running`` by this process (PID, host, start time), going to
        a ``scheme`` destination (its result ``type`` is recorded when it is published),
        with what is known of its provenance and inputs so far."""
        from .journal import identity

        pid, host, started = identity()
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO jobs (job_id, execution_id, node_id, name, status, type, scheme,"
                    " destination, created_at, pid, host, proc_start, spec_json,"
                    " provenance_json, inputs_json)"
                    " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (  # type is NOT NULL in every ledger: the scheme until the result says
                        job_id, execution_id, node_id, name, scheme, scheme, destination, utc_now(),
                        pid, host, started, _spec_text(spec), _json_text(provenance), _json_text(inputs),
                    ),
                )  # fmt: skip
        except sqlite3.IntegrityError:  # a Job published (or failed) twice: say so, in one line
            status = self.status(job_id).get("status", "recorded")
            raise PublishError(
                f"job {job_id} is already {status}: a job is recorded once (resume a failed one, "
                "or publish under a new job)"
            ) from None
        job_changed(job_id, self.path)

    def set_spec(self, job_id: str, spec: dict[str, Any]) -> None:
        """What ``resume`` needs to run the job again (sources, options; never a secret)."""
        with self._connect() as db:
            db.execute("UPDATE jobs SET spec_json=? WHERE job_id=?", (_spec_text(spec), job_id))

    # -- liveness (jupyter_publish.journal) ------------------------------------------
    def reap(self, keep: str | None = None, *, abort_uploads: bool = True) -> list[str]:
        """Mark jobs whose process died ``interrupted`` and clean their leftovers
        (a listing passes ``abort_uploads=False``: see :func:`journal.reap`)."""
        from .journal import reap

        return reap(self, keep, abort_uploads=abort_uploads)

    def running_jobs(self, host: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT job_id, pid, host, proc_start FROM jobs WHERE status='running' AND host=?",
                (host,),
            ).fetchall()
        return [dict(r) for r in rows]

    def mark_interrupted(self, job_id: str, pid: int, reason: str) -> bool:
        """``running`` -> ``interrupted``, unless someone else got there first."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET status='interrupted', error=?, finished_at=?"
                " WHERE job_id=? AND status='running' AND pid=?",
                (reason, utc_now(), job_id, pid),
            )
            return cursor.rowcount == 1

    def claim(self, job_id: str, status: str, pid: int | None) -> bool:
        """Take over a dead or failed job to resume it (one process wins)."""
        from .journal import identity

        me, host, started = identity()
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET status='running', error=NULL, finished_at=NULL, pid=?, host=?,"
                " proc_start=? WHERE job_id=? AND status=? AND pid IS ?",
                (me, host, started, job_id, status, pid),
            )
            claimed = cursor.rowcount == 1
        if claimed:
            job_changed(job_id, self.path)
        return claimed

    def record_upload(
        self,
        job_id: str,
        endpoint: str | None,
        region: str | None,
        bucket: str,
        key: str,
        upload_id: str,
        profile: str | None = None,
    ) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO multipart_uploads"
                " (upload_id, job_id, endpoint, region, bucket, key, created_at, profile, attempts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (upload_id, job_id, endpoint, region, bucket, key, utc_now(), profile),
            )

    def forget_upload(self, upload_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM multipart_uploads WHERE upload_id=?", (upload_id,))

    def count_abort(self, upload_id: str) -> int:
        """One more abort of ``upload_id`` tried (counted before it runs: a process that
        dies meanwhile still used a try); returns the tries so far."""
        with self._connect() as db:
            db.execute("UPDATE multipart_uploads SET attempts=attempts+1 WHERE upload_id=?", (upload_id,))
            row = db.execute(
                "SELECT attempts FROM multipart_uploads WHERE upload_id=?", (upload_id,)
            ).fetchone()
        return int(row[0]) if row is not None else 0

    def add_note(self, job_id: str, note: str) -> None:
        """Append ``note`` to a job's error text (what was left behind, what to do)."""
        text = scrub(note, links=False)
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET error = CASE WHEN error IS NULL OR error = '' THEN ?"
                " ELSE error || '; ' || ? END WHERE job_id=?",
                (text, text, job_id),
            )

    def open_uploads(self, job_id: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM multipart_uploads WHERE job_id=? ORDER BY created_at", (job_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def jobs_with_open_uploads(self) -> set[str]:
        """Jobs no longer running that still have multipart uploads to abort."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT DISTINCT m.job_id FROM multipart_uploads m JOIN jobs j USING (job_id)"
                " WHERE j.status != 'running'"
            ).fetchall()
        return {r[0] for r in rows}

    # -- provenance and lineage (jupyter_publish.provenance, jupyter_publish.lineage) ------
    def set_provenance(
        self, job_id: str, provenance: dict[str, Any] | None, inputs: list[dict[str, Any]] | None
    ) -> None:
        """What produced ``job_id`` and what it used, as stored: scrubbed JSON (kept for
        a failed job too, which has no ``result_json``)."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET provenance_json=?, inputs_json=? WHERE job_id=?",
                (_json_text(provenance), _json_text(inputs), job_id),
            )

    def provenance(self, job_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A job's recorded provenance and inputs (a unique ID prefix is enough)."""
        row = self._find(job_id)
        facts, inputs = _loaded(row["provenance_json"]), _loaded(row["inputs_json"])
        return (
            facts if isinstance(facts, dict) else {},
            [i for i in inputs if isinstance(i, dict)] if isinstance(inputs, list) else [],
        )

    def record_fetch(self, *, ref: str, kind: str, job_id: str | None, cid: str | None, dest: str) -> None:
        """A successful fetch: what it fetched and where it wrote (``dest``, resolved), so
        a later publish of that folder, in any process, knows what it used."""
        from .journal import host_name

        with self._connect() as db:
            db.execute(
                "INSERT INTO fetches (ref, kind, job_id, cid, dest, fetched_at, pid, host)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_link(ref), kind, job_id, cid, dest, utc_now(), os.getpid(), host_name()),
            )

    def fetches_touching(self, paths: Iterable[str]) -> list[dict[str, Any]]:
        """Recorded fetches whose folder is one of ``paths``, holds one, or lies inside one
        (resolved absolute paths), newest first."""
        found: dict[int, dict[str, Any]] = {}
        with self._connect() as db:
            for path in paths:
                rows = db.execute(
                    "SELECT * FROM fetches WHERE dest = ?"
                    " OR substr(?, 1, length(dest) + 1) = dest || '/'"
                    " OR substr(dest, 1, length(?) + 1) = ? || '/'"
                    " ORDER BY fetch_id DESC",
                    (path, path, path, path),
                ).fetchall()
                found.update({r["fetch_id"]: dict(r) for r in rows})
        return sorted(found.values(), key=lambda r: -int(r["fetch_id"]))

    def job_for_cid(self, cid: str) -> str | None:
        """The newest published job whose content CID (or IPFS CID) is ``cid``."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT job_id FROM jobs WHERE status='published' AND {_not_a_round()} AND (root_cid = ?"
                " OR json_extract(result_json, '$.Params.CID') = ?) ORDER BY job_id DESC LIMIT 1",
                (cid, cid),
            ).fetchone()
        return None if row is None else str(row[0])

    def job_for_uri(self, uri: str) -> str | None:
        """The newest published job whose URI, or one of whose objects, is ``uri``."""
        with self._connect() as db:
            row = db.execute(
                "SELECT job_id FROM jobs WHERE status='published' AND uri = ? ORDER BY job_id DESC LIMIT 1",
                (uri,),
            ).fetchone()
        if row is not None:
            return str(row[0])
        found = self.find_by_location(uri)
        return None if found is None else str(found["job_id"])

    def lineage_rows(self) -> list[dict[str, Any]]:
        """Every published job's name, time, URI, CIDs and inputs: what lineage walks,
        read without parsing any manifest."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT job_id, name, created_at, uri, root_cid,"
                " json_extract(result_json, '$.Params.CID') AS ipfs_cid, inputs_json"
                f" FROM jobs WHERE status='published' AND {_not_a_round()} ORDER BY job_id"
            ).fetchall()
        return [dict(r) for r in rows]

    def job_row(self, job_id: str) -> dict[str, Any]:
        """A job's full row (a unique ID prefix is enough), as stored: nothing reaped."""
        return dict(self._find(job_id))

    def fail(self, job_id: str, reason: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status='failed', error=?, finished_at=? WHERE job_id=?",
                (scrub(reason), utc_now(), job_id),
            )
        job_changed(job_id, self.path)

    def finish(self, result: PublishedResult) -> None:
        """The job's published result. A job started without a name (recorded under the
        default ``results``) takes the name its result has, the folder's or the file's
        (``%publish df``: ``df``), so the ledger, ``%jobs`` and the card agree."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status='published', type=?, uri=?, url=?, root_cid=?, n_files=?,"
                " name=CASE WHEN name=? THEN ? ELSE name END,"
                " total_size=?, finished_at=?, result_json=?, error=NULL,"
                " provenance_json=COALESCE(?, provenance_json), inputs_json=COALESCE(?, inputs_json)"
                " WHERE job_id=?",
                (
                    result.type,
                    _link(result.uri),
                    _link(result.url),
                    result.root_cid,
                    sum(f.kind == "file" for f in result.files),
                    DEFAULT_NAME,
                    result.name or DEFAULT_NAME,
                    result.total_size,
                    utc_now(),
                    scrub(json.dumps(result.to_dict()), links=False),
                    _json_text(result.provenance or None),
                    _json_text(result.inputs if result.provenance else None),
                    result.job_id,
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (result.job_id, r.path, r.kind, r.size, r.sha256, r.cid, _link(r.location), _link(r.url))
                    for r in result.all_records()
                ],
            )
        job_changed(result.job_id, self.path)

    def result(self, job_id: str) -> PublishedResult:
        """The recorded result of a published job (a unique prefix of the ID is enough)."""
        self.reap(abort_uploads=False)
        row = self._find(job_id)
        if row["status"] != "published" or not row["result_json"]:
            reason = f": {row['error']}" if row["error"] else ""
            raise NotFoundError(f"job {row['job_id']} has status {row['status']}{reason}")
        return PublishedResult.from_dict(json.loads(row["result_json"]))

    def _find(self, job_id: str) -> sqlite3.Row:
        with self._connect() as db:
            rows: list[sqlite3.Row] = db.execute(
                "SELECT * FROM jobs WHERE job_id = ? OR job_id LIKE ? ESCAPE '\\' ORDER BY job_id LIMIT 2",
                (job_id, _like_prefix(job_id)),
            ).fetchall()
        exact = [r for r in rows if r["job_id"] == job_id]
        if exact:
            return exact[0]
        if len(job_id) >= 6:  # a short form (the ID's random tail) names a job too
            rows = _unique_rows([*rows, *self._by_tail(job_id)])
        if len(rows) == 1 and len(job_id) >= 6:
            return rows[0]
        if rows:
            raise AmbiguousJobError(f"job ID {job_id!r} is ambiguous: give more characters")
        raise NotFoundError(f"no job {job_id!r} in the ledger at {self.path}: see `jupyter-publish jobs`")

    def _by_tail(self, text: str) -> list[sqlite3.Row]:
        """Jobs whose ID ends with the short form's tail (``j-X7K2M9QZ`` or ``X7K2M9QZ``)."""
        tail = short_tail(text)
        if tail is None:
            return []
        with self._connect() as db:
            found: list[sqlite3.Row] = db.execute(
                "SELECT * FROM jobs WHERE job_id LIKE ? ESCAPE '\\' ORDER BY job_id LIMIT 2",
                ("%" + _like_prefix(tail)[:-1],),
            ).fetchall()
        return found

    def status(self, job_id: str) -> dict[str, Any]:
        self.reap(abort_uploads=False)
        return _job_row(self._find(job_id))

    def jobs(
        self, limit: int | None = None, *, rounds: bool = False, job_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Jobs, newest first, each with ``rounds``: how many sync rounds it had
        (``%%publish --sync-every``). The rounds themselves are jobs of their own (each
        recorded what it published) but one cell's run is one job to a person: they are
        left out unless ``rounds``. ``job_id``: that job's row alone (a view that keeps up)."""
        conditions = [] if rounds else [f"name NOT GLOB '{ROUND_NAME_GLOB}'"]
        params: tuple[Any, ...] = ()
        if job_id is not None:
            conditions.append("job_id = ?")
            params = (job_id,)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = (
            "SELECT job_id, execution_id, node_id, name, status, type, scheme, destination, uri, url,"
            f" root_cid, n_files, total_size, created_at, finished_at, error, {_PROVENANCE_SELECT} FROM jobs"
            f"{where} ORDER BY job_id DESC"
        )
        if limit:
            query += " LIMIT ?"
            params = (*params, int(limit))
        self.reap(abort_uploads=False)
        with self._connect() as db:
            rows = [_job_row(r) for r in db.execute(query, params).fetchall()]
            counts = dict(
                db.execute(
                    f"SELECT substr(name, -{len(new_job_id())}), COUNT(*) FROM jobs"
                    f" WHERE name GLOB '{ROUND_NAME_GLOB}' GROUP BY 1"
                ).fetchall()
            )
        for row in rows:
            row["rounds"] = counts.get(row["job_id"], 0)
        return rows

    def files(self, job_id: str | None = None) -> list[dict[str, Any]]:
        query = (
            "SELECT f.job_id, f.path, f.kind, f.size, f.sha256, f.cid, f.location, f.url,"
            " j.destination FROM files f JOIN jobs j USING (job_id)"
        )
        params: tuple[Any, ...] = ()
        if job_id:
            job_id = self._find(job_id)["job_id"]
            query += " WHERE f.job_id = ?"
            params = (job_id,)
        query += " ORDER BY f.job_id DESC, f.kind, f.path"
        with self._connect() as db:
            rows = [dict(r) for r in db.execute(query, params).fetchall()]
            how = self._cid_params(db, {r["job_id"] for r in rows})
        for row in rows:
            row.update(how[row["job_id"]])
        return rows

    @staticmethod
    def _cid_params(db: sqlite3.Connection, job_ids: set[str]) -> dict[str, dict[str, Any]]:
        """Each job's recorded ``cid_params``, read once per job (not once per file row:
        a 20,000-file job's record is parsed once). Older records get the defaults then in force."""
        from .cid import cid_params, recorded_params

        how: dict[str, dict[str, Any]] = {}
        for job_id in job_ids:
            # json_extract gives a JSON text only for an object or array (a string comes bare):
            # whatever a hand-edited record holds is read as data, never trusted as a dict.
            row = db.execute(
                "SELECT json_extract(result_json, '$.cid_params'), json_type(result_json, '$.cid_params'),"
                " json_extract(result_json, '$.cid_version') FROM jobs WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            params, kind, version = row if row else (None, None, 0)
            recorded = recorded_params(json.loads(params) if kind == "object" and params else params)
            how[job_id] = recorded or _defaults(cid_params, version)
        return how

    def find_by_location(self, location: str) -> dict[str, Any] | None:
        """A recorded file stored at, or linked as, ``location`` (so fetch by URI can verify it)."""
        return self.find_by_locations([location]).get(location)

    def find_by_locations(self, locations: Iterable[str]) -> dict[str, dict[str, Any]]:
        """:meth:`find_by_location` for many objects over one connection: ``{location: row}``.

        Fetching a prefix of 20,000 objects should cost 20,000 index lookups (~0.5 s),
        not 20,000 connections (~0.3 ms each, most of it opening the schema).
        """
        found: dict[str, dict[str, Any]] = {}
        with self._connect() as db:
            for location in locations:
                row = db.execute(_FIND_BY_LOCATION, (location, location)).fetchone()
                if row is not None:
                    found[location] = dict(row)
        return found

    def find_by_link(self, url: str) -> dict[str, Any] | None:
        """A recorded file whose link or location is ``url``, or ``url`` but for the
        signature in its query when the recorded link had one: a presigned URL signed
        again (new ``X-Amz-*`` parameters, a new expiry) names the same object; another
        query (``?file=b`` where ``?file=a`` was recorded) names another. The fetch still checks the bytes
        against the recorded sha256, so a link that now serves other bytes fails loudly."""
        found = self.find_by_location(url)
        if found is not None:
            return found
        base = url.partition("#")[0].partition("?")[0]
        if "://" not in base:
            return None
        low, high = base + "?", base + "@"
        with self._connect() as db:
            rows = db.execute(_FIND_BY_SIGNED_LINK, (low, high, low, high)).fetchall()
        wanted = _unsigned_query(url)
        for row in rows:
            links = [link for link in (row["url"], row["location"]) if link and link.startswith(low)]
            if any(_unsigned_query(link) == wanted for link in links):
                return dict(row)
        return None

    def find_file(self, job_id: str, path: str) -> dict[str, Any] | None:
        """The recorded file (or archive) ``path`` of job ``job_id`` (its full ID), if any:
        a file inside an archive too."""
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM files WHERE job_id = ? AND path = ? AND kind IN ('file', 'archive')"
                " AND sha256 IS NOT NULL ORDER BY kind DESC LIMIT 1",
                (job_id, path),
            ).fetchone()
        return None if row is None else dict(row)

    # -- where identical bytes were published (jupyter_publish.dedup) ------------------
    def stored_copies(
        self, sizes: Iterable[int], location_prefix: str, limit: int = 20
    ) -> dict[int, list[dict[str, Any]]]:
        """Published objects (files and archives, not archive members) of each size in
        ``sizes`` stored under ``location_prefix`` (``s3://BUCKET/``), newest first, each
        with its job's result ``Params`` (where it went: the endpoint): ``{size: [row]}``.

        One indexed lookup per size, over one connection: candidates for a server-side copy,
        chosen cheaply before any byte is hashed."""
        query = (
            "SELECT f.job_id, f.path, f.kind, f.size, f.sha256, f.cid, f.location,"
            " json_extract(j.result_json, '$.Params') AS params"
            " FROM files f INDEXED BY files_size JOIN jobs j USING (job_id)"
            " WHERE f.size = ? AND f.sha256 IS NOT NULL AND f.kind IN ('file', 'archive')"
            " AND f.location LIKE ? ESCAPE '\\' AND f.location NOT LIKE '%#%'"
            f" AND j.status = 'published' AND {_not_a_round('j.')}"
            " ORDER BY f.job_id DESC LIMIT ?"
        )
        found: dict[int, list[dict[str, Any]]] = {}
        with self._connect() as db:
            for size in set(sizes):
                rows = db.execute(query, (size, _like_prefix(location_prefix), limit)).fetchall()
                if rows:
                    found[size] = [_with_params(r) for r in rows]
        return found

    def archive_results(
        self, n_files: int, total_size: int, location_prefix: str, limit: int = 20
    ) -> list[PublishedResult]:
        """Published archive jobs of ``n_files`` files and ``total_size`` bytes stored under
        ``location_prefix``, newest first: candidates for a server-side copy of an archive."""
        query = (
            "SELECT f.job_id FROM files f JOIN jobs j USING (job_id)"
            " WHERE f.kind = 'archive' AND f.location LIKE ? ESCAPE '\\' AND j.status = 'published'"
            " AND j.n_files = ? AND j.total_size = ? ORDER BY f.job_id DESC LIMIT ?"
        )
        with self._connect() as db:
            ids = [
                r[0] for r in db.execute(query, (_like_prefix(location_prefix), n_files, total_size, limit))
            ]
            texts = [
                db.execute("SELECT result_json FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]
                for job_id in ids
            ]
        results = []
        for text in texts:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                results.append(PublishedResult.from_dict(json.loads(text)))
        return results


def _with_params(row: sqlite3.Row) -> dict[str, Any]:
    """A row whose ``params`` column (a job's result Params as JSON) is read as a dict."""
    found = dict(row)
    try:
        params = json.loads(found["params"] or "{}")
    except ValueError:
        params = {}
    found["params"] = params if isinstance(params, dict) else {}
    return found


_PROVENANCE_SELECT = (
    "json_extract(provenance_json, '$.notebook') AS notebook,"
    " json_extract(provenance_json, '$.user') AS user, host,"
    " substr(json_extract(provenance_json, '$.git.commit'), 1, 12) AS git_commit,"
    " json_extract(provenance_json, '$.duration_s') AS duration_s"
)
"""A few facts of each job's provenance, read by SQLite (not a JSON parse per row in Python)."""


def _unique_rows(rows: Iterable[sqlite3.Row]) -> list[sqlite3.Row]:
    seen: dict[str, sqlite3.Row] = {}
    for row in rows:
        seen.setdefault(row["job_id"], row)
    return list(seen.values())


def _job_row(row: sqlite3.Row) -> dict[str, Any]:
    """A jobs row as read: ``type`` only once there is a result, ``scheme`` always (a row an
    older version wrote after this one migrated the ledger has its scheme in ``type``)."""
    job = dict(row)
    job["scheme"] = job.get("scheme") or job["type"]
    if job["status"] != "published":
        job["type"] = None
    return job


def _migrate_type(db: sqlite3.Connection) -> None:
    """Once, when ``scheme`` is added: it takes what ``type`` held, and a published job's
    ``type`` becomes its result's (they differed for HTTP: ``http`` vs ``urlDownload``)."""
    db.execute("UPDATE jobs SET scheme = type WHERE scheme IS NULL")
    rows = db.execute(
        "SELECT job_id, result_json FROM jobs WHERE status='published' AND result_json IS NOT NULL"
    )
    for job_id, text in rows.fetchall():
        with contextlib.suppress(ValueError, AttributeError):
            kind = json.loads(text).get("Type")
            if isinstance(kind, str) and kind:
                db.execute("UPDATE jobs SET type=? WHERE job_id=?", (kind, job_id))


def _defaults(cid_params: Any, version: Any) -> dict[str, Any]:
    """The params of a record from before they were recorded; a version that is not 0 or 1
    (a hand-edited record) leaves them all unknown rather than guessed."""
    if version in (None, 0, 1) and not isinstance(version, bool):
        return dict(cid_params(version or 0))
    return dict.fromkeys(cid_params(0))


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a ledger made by an older version up to date (ADD COLUMN keeps every row)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if any(name not in have for name in SCHEME_COLUMN):
        # The column and its rows change in one transaction: an ALTER committed alone left,
        # in a process killed before the rows were done, a column never filled. Another
        # process opening the ledger waits here, then finds the column there.
        db.execute("BEGIN IMMEDIATE")
        have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        for name, kind in SCHEME_COLUMN.items():
            if name not in have:
                db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
                _migrate_type(db)
        db.commit()
    for table, columns in (
        ("jobs", LIVENESS_COLUMNS),
        ("multipart_uploads", UPLOAD_COLUMNS),
        ("jobs", PROVENANCE_COLUMNS),
        ("catalog_pending", PENDING_COLUMNS),
        ("catalog_state", STATE_COLUMNS),
    ):
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                with contextlib.suppress(sqlite3.OperationalError):  # another process just added it
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
