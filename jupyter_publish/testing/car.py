"""Reading a CAR v1 back, to check what :func:`jupyter_publish.car.encode_car` sent.

Test support: the publisher only writes CARs, so the reader lives here, not in the core.
"""

from __future__ import annotations

import hashlib

from jupyter_publish.dagpb import read_varint

__all__ = ["decode_car"]


def _cid_length(data: bytes, pos: int) -> int:
    """The length of the binary CID at ``pos``: a v0 multihash, or v1 version+codec+multihash."""
    if data[pos : pos + 2] == b"\x12\x20":
        return 34
    start = pos
    for _ in range(3):  # version, codec, hash function
        _, pos = read_varint(data, pos)
    digest_len, pos = read_varint(data, pos)
    return pos + digest_len - start


def _cbor_item(data: bytes, pos: int) -> tuple[object, int]:
    """One dag-cbor item of the kinds a CAR header uses (map, array, text, uint, CID)."""
    major, info = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    if info < 24:
        n = info
    else:
        width = 1 << (info - 24)
        n, pos = int.from_bytes(data[pos : pos + width], "big"), pos + width
    if major == 0:
        return n, pos
    if major in (2, 3):
        raw = data[pos : pos + n]
        return (raw if major == 2 else raw.decode()), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _cbor_item(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        mapping = {}
        for _ in range(n):
            key, pos = _cbor_item(data, pos)
            mapping[key], pos = _cbor_item(data, pos)
        return mapping, pos
    if major == 6 and n == 42:
        link, pos = _cbor_item(data, pos)
        assert isinstance(link, bytes) and link[:1] == b"\x00", "a CID link starts with 0x00"
        return link[1:], pos
    raise ValueError(f"unsupported CBOR item (major {major}) in a CAR header")


def decode_car(data: bytes) -> tuple[dict[str, object], list[tuple[bytes, bytes]]]:
    """The header and the (CID bytes, block bytes) of a whole CAR v1 held in memory.

    Checked as a reader of someone else's CAR must: a truncated stream, a section that
    overruns it, or a block whose bytes do not hash to its CID (sha2-256) is a ValueError,
    never a short block returned as if whole.
    """
    try:
        length, pos = read_varint(data, 0)
        header, end = _cbor_item(data, pos)
        if end != pos + length or not isinstance(header, dict):
            raise ValueError("malformed CAR header")
        pos = end
        blocks = []
        while pos < len(data):
            length, pos = read_varint(data, pos)
            cid_len = _cid_length(data, pos)
            if pos + length > len(data) or cid_len > length:
                raise ValueError(f"truncated CAR: a block of {length} bytes at byte {pos} overruns it")
            cid, block = data[pos : pos + cid_len], data[pos + cid_len : pos + length]
            if cid[-34:-32] != b"\x12\x20" or hashlib.sha256(block).digest() != cid[-32:]:
                raise ValueError(f"the block at byte {pos} does not hash to its CID (sha2-256)")
            blocks.append((cid, block))
            pos += length
    except (IndexError, AssertionError, UnicodeDecodeError) as exc:
        raise ValueError(f"truncated or malformed CAR ({type(exc).__name__})") from None
    return header, blocks
