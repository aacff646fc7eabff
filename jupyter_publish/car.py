"""A minimal CAR v1 writer (and reader, for checking): how a DAG we built reaches a daemon.

``ipfs dag import`` (Kubo and js-ipfs) takes a CAR: a dag-cbor header ``{roots, version:
1}`` then, per block, ``varint(len(cid) + len(data)) + cid + data``. Only what we need is
here: CIDs as binary (v0 multihash or v1), no dependency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from .cid import _varint


def _cbor_head(major: int, n: int) -> bytes:
    """A CBOR item head (major type, argument), in the shortest form dag-cbor requires."""
    if n < 24:
        return bytes((major << 5 | n,))
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes((major << 5 | info,)) + n.to_bytes(width, "big")
    raise ValueError(f"{n} does not fit a CBOR head")


def _cbor_text(text: str) -> bytes:
    raw = text.encode()
    return _cbor_head(3, len(raw)) + raw


def car_header(roots: Iterable[bytes]) -> bytes:
    """The varint-prefixed dag-cbor header ``{"roots": [CID…], "version": 1}``.

    Keys in dag-cbor's order (shorter first); a CID is tag 42 over ``0x00 + CID bytes``.
    """
    roots = list(roots)
    body = b"\xa2" + _cbor_text("roots") + _cbor_head(4, len(roots))
    for cid in roots:
        body += b"\xd8\x2a" + _cbor_head(2, len(cid) + 1) + b"\x00" + cid
    body += _cbor_text("version") + b"\x01"
    return _varint(len(body)) + body


def encode_car(roots: Iterable[bytes], blocks: Iterable[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """The CAR v1 stream over ``blocks`` (CID bytes, block bytes), one piece at a time."""
    yield car_header(roots)
    for cid, data in blocks:
        yield _varint(len(cid) + len(data)) + cid + data


# -- reading (tests, and anyone checking what was sent) ---------------------------------------
def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return n, pos


def _cid_length(data: bytes, pos: int) -> int:
    """The length of the binary CID at ``pos``: a v0 multihash, or v1 version+codec+multihash."""
    if data[pos : pos + 2] == b"\x12\x20":
        return 34
    start = pos
    for _ in range(3):  # version, codec, hash function
        _, pos = _read_varint(data, pos)
    digest_len, pos = _read_varint(data, pos)
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
        raw, pos = _cbor_item(data, pos)
        assert isinstance(raw, bytes) and raw[:1] == b"\x00", "a CID link starts with 0x00"
        return raw[1:], pos
    raise ValueError(f"unsupported CBOR item (major {major}) in a CAR header")


def decode_car(data: bytes) -> tuple[dict[str, object], list[tuple[bytes, bytes]]]:
    """The header and the (CID bytes, block bytes) of a whole CAR v1 held in memory.

    Checked as a reader of someone else's CAR must: a truncated stream, a section that
    overruns it, or a block whose bytes do not hash to its CID (sha2-256) is a ValueError,
    never a short block returned as if whole.
    """
    try:
        length, pos = _read_varint(data, 0)
        header, end = _cbor_item(data, pos)
        if end != pos + length or not isinstance(header, dict):
            raise ValueError("malformed CAR header")
        pos = end
        blocks = []
        while pos < len(data):
            length, pos = _read_varint(data, pos)
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
