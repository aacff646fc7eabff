"""A minimal CAR v1 writer: how a DAG we built reaches a daemon.

``ipfs dag import`` (Kubo and js-ipfs) takes a CAR: a dag-cbor header ``{roots, version:
1}`` then, per block, ``varint(len(cid) + len(data)) + cid + data``. Only what we need is
here: CIDs as binary (v0 multihash or v1), no dependency. The reader that checks what
was sent is test support: :mod:`jupyter_publish.testing.car`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .dagpb import varint


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
    return varint(len(body)) + body


def encode_car(roots: Iterable[bytes], blocks: Iterable[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """The CAR v1 stream over ``blocks`` (CID bytes, block bytes), one piece at a time."""
    yield car_header(roots)
    for cid, data in blocks:
        yield varint(len(cid) + len(data)) + cid + data
