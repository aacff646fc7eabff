"""Packs: many catalog records in one immutable object, so a cold listing is a few GETs.

A reader that holds hundreds of records it read one by one (a cold start, or many
incremental listings) writes them back as one gzip'd pack under ``packs/`` (if it may
write; a job's PutObject-only credentials never need to). The next cold reader reads the
packs, lists ``records/`` only from a little before the newest packed record, and GETs
what no pack holds, plus the names a pack says its writer could not read or refused (so
a tampered record is still seen and refused).

A pack grants nothing: every record in it is verified against its own name exactly as if
it had been read alone, so a pack can only hold records anyone allowed to write to the
catalog could have written to ``records/`` anyway. (A record deleted from ``records/``
stays listed by an older pack: records are immutable, deleting one is not supported.)
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib

from .records import TamperedRecordError

PACKS = "packs/"
FORMAT = "jupyter-publish.catalog-pack/1"
MIN_RECORDS = 256
"""A reader packs the records it read one by one once it holds at least this many."""
MAX_UNPACKED = 256 * 1024 * 1024
"""A pack past this unpacked is refused (a gzip bomb): a reader unpacks one pack at a time."""
MAX_PACKED = 64 * 1024 * 1024
"""Packs listed larger than this are not read (their records are read one by one)."""
PACK_BUDGET = 64 * 1024 * 1024
"""The record bytes one pack a reader writes holds at most (JSON escaping may double
them): the rest go in the next one, so every pack stays readable under the limits."""
_NAME = re.compile(r"^([0-9A-HJKMNP-TV-Z]{26})\.(\d{1,9})\.([0-9a-f]{64})\.json\.gz$")


def make(items: list[tuple[str, bytes]], unread: list[str] | None = None) -> tuple[str, bytes]:
    """``(name, bytes)`` of a pack of ``(record name, record bytes)`` and the names its
    writer listed but could not use (``unread``): named for its newest record, its count
    and its own sha256."""
    doc = {
        "format": FORMAT,
        "records": {name: data.decode() for name, data in items},
        "unread": sorted(unread or []),
    }
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    packed = _gzip(raw)
    newest = max(name for name, _ in items)[:26]
    return f"{newest}.{len(items)}.{hashlib.sha256(packed).hexdigest()}.json.gz", packed


def is_pack(name: str) -> bool:
    return _NAME.match(name) is not None


def read(name: str, data: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The records in a pack, ``{name: bytes}`` (each still to be verified by the caller),
    and the names its writer could not read or refused (to be read one by one)."""
    match = _NAME.match(name)
    if match is None:
        raise TamperedRecordError(name, "its name is not NEWEST.COUNT.SHA256.json.gz")
    if hashlib.sha256(data).hexdigest() != match.group(3):
        raise TamperedRecordError(name, "its bytes do not have the sha256 its name says")
    try:
        inflate = zlib.decompressobj(wbits=31)
        raw = inflate.decompress(data, MAX_UNPACKED)
        if inflate.unconsumed_tail:
            raise TamperedRecordError(name, f"it unpacks to more than {MAX_UNPACKED} bytes")
        del inflate
        doc = json.loads(raw)
        del raw
    except (zlib.error, ValueError, RecursionError):
        raise TamperedRecordError(name, "it is not a gzip'd JSON pack") from None
    found = doc.get("records") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    if not isinstance(found, dict):
        raise TamperedRecordError(name, f"it is not a {FORMAT} pack")
    unread = doc.get("unread")
    names = [str(n) for n in unread] if isinstance(unread, list) else []
    kept: dict[str, bytes] = {}
    for key, value in found.items():
        if isinstance(value, str):
            try:
                kept[str(key)] = value.encode()
            except UnicodeEncodeError:  # a lone surrogate: no record's bytes; read it alone
                continue
    return kept, names


def budget(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The oldest of ``items`` (sorted by name) that fit one pack: a cold reader lists
    after the newest record a pack holds, so a pack holds a prefix, never a gap."""
    total, kept = 0, list[tuple[str, bytes]]()
    for item in items:
        total += len(item[1])
        if kept and total > PACK_BUDGET:
            break
        kept.append(item)
    return kept


def _gzip(raw: bytes) -> bytes:
    """gzip with no time stamp in the header: the same records make the same pack."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    return deflate.compress(raw) + deflate.flush()
