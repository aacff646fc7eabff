"""Catalog records: one immutable JSON object per job, named so it proves itself.

A record's key is ``records/{W}.{job_id}.{sha256}.json``: ``W`` is a ULID of the time it
was written (so a listing is in write order: a job that ran for an hour still lands after
the records a reader already has), then the job ID, then the sha256 of the record's exact
bytes. The body repeats ``W`` and the job ID. A reader hashes the bytes it got and
compares all three, so an edited record, one renamed to another job or another time, or
one whose name was made up, is refused naming its key. Pure functions: no I/O here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import IntegrityError, PublishError
from ..ids import decode_ulid, encode_ulid, ulid

FORMAT = "jupyter-publish.catalog-record/1"
RECORDS = "records/"
"""The folder (key prefix) under the catalog's own prefix that holds the records."""
_NAME = re.compile(r"^([0-9A-HJKMNP-TV-Z]{26})\.([A-Za-z0-9_-]{1,200})\.([0-9a-f]{64})\.json$")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
"""Job IDs a record name can carry (every ID ids.py or sync.py makes; no dots, no slashes)."""


MAX_RECORD_BYTES = 256 * 1024 * 1024
"""A record lists every file of a job (20,000 files are ~8 MB) and a pack thousands of
records: anything past this is neither, and is not read."""
TOO_LARGE = "too large: "
"""How the cache's ``problem`` of a record too large to read begins."""


class RecordTooLargeError(PublishError):
    """A catalog object past :data:`MAX_RECORD_BYTES`: not read, so nothing is known of
    its bytes (not a tampered record: a record that no reader can take)."""

    def __init__(self, key: str, why: str | None = None) -> None:
        self.key = key
        self.why = why or too_large()
        super().__init__(f"catalog record {key} not read: {self.why}")


def too_large() -> str:
    return f"{TOO_LARGE}it is over {MAX_RECORD_BYTES:,} bytes, more than any record holds"


class TamperedRecordError(IntegrityError):
    """A catalog record whose bytes, name or job ID do not agree: it is never trusted."""

    def __init__(self, key: str, why: str) -> None:
        self.key, self.why = key, why
        Exception.__init__(self, f"catalog record {key} refused: {why}")
        self.what, self.expected, self.actual = key, "", ""


@dataclass(frozen=True)
class RecordName:
    """What a record's key says: when it was written, for which job, with what sha256."""

    written: str
    """The ULID of the write (its first 10 characters are the millisecond time)."""
    job_id: str
    sha256: str

    @property
    def name(self) -> str:
        return f"{self.written}.{self.job_id}.{self.sha256}.json"


def parse_name(key: str) -> RecordName | None:
    """The parts of a record's key (its last path segment), or None if it is none."""
    match = _NAME.match(key.rsplit("/", 1)[-1])
    return RecordName(*match.groups()) if match else None


def is_name(name: str) -> bool:
    """Whether ``name`` is a record's name and nothing more: no folder, no ``..`` (names a
    pack hands a reader are read from the store as given)."""
    return _NAME.match(name) is not None


def encode(record: dict[str, Any]) -> bytes:
    """The canonical bytes of a record (sorted keys, no spaces): what its sha256 is of."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make(body: dict[str, Any], now_ms: int | None = None) -> tuple[str, bytes]:
    """``(name, bytes)`` of a new record for ``body`` (which must hold ``job_id``)."""
    job_id = str(body.get("job_id", ""))
    if not JOB_ID.match(job_id):
        raise ValueError(f"job ID {job_id!r} cannot name a catalog record")
    written = ulid(now_ms)
    data = encode({**body, "format": FORMAT, "record_id": written})
    return RecordName(written, job_id, hashlib.sha256(data).hexdigest()).name, data


def verify(key: str, data: bytes) -> dict[str, Any]:
    """The record at ``key`` if its bytes, name and contents agree; else TamperedRecordError."""
    name = parse_name(key)
    if name is None:
        raise TamperedRecordError(key, "its name is not WRITTEN.JOB.SHA256.json")
    actual = hashlib.sha256(data).hexdigest()
    if actual != name.sha256:
        raise TamperedRecordError(
            key, f"its bytes have sha256 {actual[:16]}…, its name says {name.sha256[:16]}…"
        )
    try:
        record = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # a matching hash of non-JSON (or UTF-16, or
        raise TamperedRecordError(key, "it is not JSON") from None  # nesting past the stack) was made so
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise TamperedRecordError(key, f"it is not a {FORMAT} record")
    try:  # Only the bytes make() writes: no duplicate keys (two readings), no lone surrogates
        canonical = encode(record) == data  # (unprintable, unstorable), no other encoding.
    except (ValueError, RecursionError):
        canonical = False
    if not canonical:
        raise TamperedRecordError(key, "it is not written as a record is (canonical JSON)")
    if record.get("job_id") != name.job_id:
        raise TamperedRecordError(
            key, f"it holds job {str(record.get('job_id'))[:40]!r}, its name says {name.job_id}"
        )
    if record.get("record_id") != name.written:
        raise TamperedRecordError(key, "it was written under another name (renamed)")
    result = record.get("result")
    if result is not None and (not isinstance(result, dict) or result.get("job_id") != name.job_id):
        raise TamperedRecordError(key, "its result is of another job")
    return record


def written_floor(written: str, lookback_ms: int) -> str:
    """A listing start that sorts before every record written ``lookback_ms`` before ``written``.

    Clocks differ between machines and a slow PUT lands late: a reader lists again from a
    little before the newest record it has, and skips the keys it already holds.
    """
    try:
        millis = decode_ulid(written) >> 80
    except ValueError:
        return ""
    return encode_ulid(max(0, millis - lookback_ms) << 80)[:10]
