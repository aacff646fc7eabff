"""Packs: many catalog records in one immutable object, so a cold listing is a few GETs.

A reader that holds hundreds of records it read one by one (a cold start, or many
incremental listings) writes them back as one gzip'd pack under ``packs/`` (if it may
write; a job's PutObject-only credentials never need to). The next cold reader reads the
packs, lists ``records/`` whole (a LIST page is a thousand names), and GETs what no pack
holds (so a tampered record is still read, and refused; the names a pack says its writer
could not use are kept in it but not read). The listing, not a pack, decides what exists: anyone
who may write may write a pack whose name claims any range, and one holding a single
record named as covering all time must not hide every record before it.

A pack is named for the records it covers, ``FIRST-LAST.COUNT.json.gz`` (the time parts
of its oldest and newest record names): readers that packed the same records write the
same key, and a reader about to write one first lists ``packs/`` and leaves out what a
pack there already holds (:func:`covered` picks the packs whose names may, and those are
read to see: a name is only a claim), so N readers do not leave N packs.

A pack grants nothing: every record in it is verified against its own name exactly as if
it had been read alone, so a pack can only hold records anyone allowed to write to the
catalog could have written to ``records/`` anyway. (A record deleted from ``records/``
stays listed by an older pack: records are immutable, deleting one is not supported.)

Packs are immutable too, and deleting one is not supported either, but costs nothing a
listing cannot recover: a cold reader then GETs the records that pack held one by one.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass

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
_ULID = "[0-9A-HJKMNP-TV-Z]{26}"
_NAME = re.compile(rf"^({_ULID})-({_ULID})\.(\d{{1,9}})\.json\.gz$")


@dataclass(frozen=True)
class Coverage:
    """What a pack's name says it holds: ``count`` records, the time parts of whose
    names run from ``first`` to ``last`` (both included)."""

    first: str
    last: str
    count: int

    def holds(self, record: str) -> bool:
        return self.first <= record[:26] <= self.last


def coverage(name: str) -> Coverage | None:
    """What the pack named ``name`` covers; None: not a pack's name."""
    match = _NAME.match(name)
    if match is None or match.group(1) > match.group(2):
        return None
    return Coverage(match.group(1), match.group(2), int(match.group(3)))


def make(items: list[tuple[str, bytes]], unread: list[str] | None = None) -> tuple[str, bytes]:
    """``(name, bytes)`` of a pack of ``(record name, record bytes)`` and the names its
    writer listed but could not use (``unread``): named for the records it covers, so
    the same records packed by two readers land on one key."""
    doc = {
        "format": FORMAT,
        "records": {name: data.decode() for name, data in items},
        "unread": sorted(unread or []),
    }
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    names = [name for name, _ in items]
    return f"{min(names)[:26]}-{max(names)[:26]}.{len(items)}.json.gz", _gzip(raw)


def is_pack(name: str) -> bool:
    return coverage(name) is not None


def read(name: str, data: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The records in a pack, ``{name: bytes}`` (each still to be verified by the caller),
    and the names its writer could not read or refused (to be read one by one)."""
    covers = coverage(name)
    if covers is None:
        raise TamperedRecordError(name, "its name is not FIRST-LAST.COUNT.json.gz")
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
    if len(found) != covers.count or not all(covers.holds(str(key)) for key in found):
        raise TamperedRecordError(name, "it does not hold the records its name says")
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


def covered(names: list[str], packs: list[Coverage]) -> set[str]:
    """Those of ``names`` (records a reader would pack) that listed ``packs`` already
    cover: every one in a pack's range, when the reader holds no more in that range than
    the pack says it holds (then it holds the same records; holding more, it has one the
    pack lacks, and packs them all again rather than leave a cold reader without it)."""
    found: set[str] = set()
    for pack in packs:
        inside = [n for n in names if pack.holds(n)]
        if inside and len(inside) <= pack.count:
            found.update(inside)
    return found


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
