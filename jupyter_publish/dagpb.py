"""The few protobuf pieces of a dag-pb block, shared by plain nodes and HAMT shards.

:mod:`.cid` builds files and folders with them, :mod:`.hamt` builds shard nodes and
:mod:`.car` frames blocks; each imports this module instead of the other, so none of them
imports the module that imports it.
"""

from __future__ import annotations

__all__ = ["SHA256", "bytes_field", "dag_pb_block", "pb_link", "read_varint", "varint"]

SHA256 = b"\x12\x20"
"""Multihash prefix: sha2-256, 32 bytes."""


def varint(n: int) -> bytes:
    """Unsigned LEB128 varint, as protobuf and multiformats use."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos:]`` and the position after it (the inverse of :func:`varint`)."""
    n = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return n, pos


def bytes_field(key: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field; ``key`` is the tag byte (field << 3 | 2)."""
    return bytes((key,)) + varint(len(payload)) + payload


def pb_link(cid: bytes, name: bytes, tsize: int) -> bytes:
    """PBLink {Hash=1, Name=2, Tsize=3}, wrapped as PBNode field Links=2."""
    body = bytes_field(0x0A, cid) + bytes_field(0x12, name) + b"\x18" + varint(tsize)
    return bytes_field(0x12, body)


def dag_pb_block(links: list[tuple[bytes, bytes, int]], unixfs: bytes) -> bytes:
    """A dag-pb block in canonical order: every link, then Data."""
    return b"".join(pb_link(*link) for link in links) + bytes_field(0x0A, unixfs)
