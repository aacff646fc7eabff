"""IPFS CIDs computed locally, exactly as ``ipfs add`` (Kubo defaults) would give them.

Every published file is recorded with its IPFS CID whatever backend stored it, so the
CID must be computed without a daemon, in the same streaming pass as the SHA-256, and
must match what IPFS later reports. This module re-implements the few pieces of the
Kubo importer that decide a CID:

* UnixFS, fixed 256 KiB chunks, balanced DAG with at most 174 links per node;
* dag-pb encoding (PBNode: Links=2 before Data=1) with sha2-256 multihashes;
* CIDv0 (``ipfs add``): leaves are UnixFS File nodes, CIDs in base58btc ``Qm…``;
* CIDv1 (``ipfs add --cid-version=1``, which implies ``--raw-leaves``): leaves are raw
  blocks, parents and directories dag-pb, CIDs in base32 ``baf…``;
* basic UnixFS directories (links sorted by name), as ``ipfs add -r --hidden``;
* HAMT-sharded directories above Kubo's 256 KiB link-size threshold (see
  :mod:`jupyter_publish.hamt` for the exact rule and which comparison it follows).

Symlinks inside a folder are UnixFS symlink nodes by default (``symlinks="node"``), as
``ipfs add -r`` stores them: a dag-pb node whose UnixFS Data is ``Type=Symlink`` and the
link's target text, no links (dag-pb in CIDv1 too). ``symlinks="follow"`` hashes what the
link points to instead: that is what a publish uploads and records (see :func:`cid_params`).
``hidden=False`` leaves out dotfiles and dotfolders, as ``ipfs add -r`` without ``--hidden``.
The tiny protobuf encoder is inline, and so are the two CID string forms ``ipfs add``
prints (base58btc for v0, base32 for v1): ``multiformats`` validates types on every call
and cost ~1 ms per CID, more than hashing a small file. It still parses arbitrary CIDs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from multiformats import CID

from . import hamt
from .dagpb import SHA256 as _SHA256
from .dagpb import bytes_field as _bytes_field
from .dagpb import dag_pb_block as _dag_pb_block
from .dagpb import varint as _varint
from .errors import CidError, SourceError

__all__ = [
    "CHUNKER",
    "CHUNK_SIZE",
    "CID_PARAM_KEYS",
    "DagNode",
    "FileCidBuilder",
    "cid_of",
    "cid_params",
    "cid_v1",
    "directory_node",
    "file_node",
    "normalize_cid",
    "parse_cid",
    "recorded_params",
    "same_content_cid",
    "tree_node",
]

CHUNK_SIZE: int = 262144
CHUNKER: str = f"size-{CHUNK_SIZE}"  # Kubo's --chunker spelling of the one chunker we use
MAX_LINKS: int = 174

_V1_DAG_PB = b"\x01\x70"  # CIDv1 prefix, codec dag-pb
_V1_RAW = b"\x01\x55"  # CIDv1 prefix, codec raw
_READ_SIZE = 4 * CHUNK_SIZE

# A DAG link while building: (CID bytes, Tsize, logical size).
_Link = tuple[bytes, int, int]


@dataclass(frozen=True)
class DagNode:
    """The root of a UnixFS DAG: its CID and the sizes a parent link needs."""

    cid: str  # CIDv0 'Qm…' or CIDv1 base32 'baf…'
    tsize: int  # cumulative encoded size (what a parent link's Tsize holds)
    size: int  # logical content size in bytes (file size; for dirs sum of files)


def _cid_bytes(block: bytes, prefix: bytes) -> bytes:
    """CID bytes for a dag-pb block (``prefix`` is ``b""`` for CIDv0) or raw block."""
    return prefix + _SHA256 + hashlib.sha256(block).digest()


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_DIGITS = {c: i for i, c in enumerate(_B58)}
_B32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def _b58encode(raw: bytes) -> str:
    """Bitcoin-alphabet base58 (leading zero bytes become ``1``)."""
    n = int.from_bytes(raw, "big")
    digits = []
    while n:
        n, r = divmod(n, 58)
        digits.append(_B58[r])
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + "".join(reversed(digits))


def _b58decode(text: str) -> bytes:
    """Inverse of :func:`_b58encode`; KeyError on a character outside the alphabet."""
    n = 0
    for c in text:
        n = n * 58 + _B58_DIGITS[c]
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _cid_str(raw: bytes) -> str:
    """The canonical string of a binary CID: base58btc for v0, base32 (``b…``) for v1."""
    if raw[:2] == _SHA256:
        return _b58encode(raw)
    return "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _cid_raw(text: str) -> bytes:
    """The binary form of a CID string; the canonical forms fast, anything else via multiformats.

    Only strings that re-encode to themselves take the fast path, so the bytes are
    exactly what ``bytes(parse_cid(text))`` gives.
    """
    try:
        if len(text) == 46 and text.startswith("Qm"):
            raw = _b58decode(text)
            if len(raw) == 34 and raw[:2] == _SHA256:
                return raw
        elif text.startswith("b") and _B32.issuperset(text[1:]):
            body = text[1:].upper()
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
            if raw[:1] == b"\x01" and raw[2:4] == _SHA256 and len(raw) == 36 and _cid_str(raw) == text:
                return raw
    except (KeyError, ValueError):
        pass
    return bytes(parse_cid(text))


class FileCidBuilder:
    """Streams a file's bytes (any chunk sizes) into its UnixFS DAG; memory stays flat."""

    def __init__(self, cid_version: int = 0) -> None:
        if cid_version not in (0, 1):
            raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
        self._v1 = cid_version == 1
        self._pending = bytearray()
        self._levels: list[list[_Link]] = [[]]
        self._leaves = 0
        self._done = False

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next bytes of the file."""
        if self._done:
            raise RuntimeError("FileCidBuilder.update() called after finish()")
        mv = memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        if self._pending:
            take = CHUNK_SIZE - len(self._pending)
            self._pending += mv[:take]
            mv = mv[take:]
            if len(self._pending) < CHUNK_SIZE:
                return
            self._leaf(self._pending)
            self._pending = bytearray()
        while len(mv) >= CHUNK_SIZE:
            self._leaf(mv[:CHUNK_SIZE])
            mv = mv[CHUNK_SIZE:]
        self._pending += mv

    def finish(self) -> DagNode:
        """Close the file and return its root node (the CID ``ipfs add`` prints)."""
        cid, tsize, size = self._finish_link()
        return DagNode(_cid_str(cid), tsize, size)

    def _finish_link(self) -> _Link:
        """Close the file; its root as (CID bytes, Tsize, size). Frees the chunk buffer."""
        if self._done:
            raise RuntimeError("FileCidBuilder.finish() called twice")
        self._done = True
        if self._pending or not self._leaves:
            self._leaf(self._pending)
        self._pending = bytearray()  # a finished builder may be kept: hold no chunk
        levels, self._levels = self._levels, []
        i = 0
        while True:
            if i == len(levels) - 1 and len(levels[i]) == 1:
                return levels[i][0]
            if levels[i]:
                if i + 1 == len(levels):
                    levels.append([])
                levels[i + 1].append(self._parent(levels[i]))
                levels[i] = []
            i += 1

    def _leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        n = len(chunk)
        if self._v1:
            link = (_V1_RAW + _SHA256 + hashlib.sha256(chunk).digest(), n, n)
        else:
            # PBNode{Data: UnixFS{Type=File, Data=chunk, filesize=n}}, hashed without a copy.
            head = b"\x08\x02" + (b"\x12" + _varint(n) if n else b"")
            tail = b"\x18" + _varint(n)
            inner = len(head) + n + len(tail)
            prefix = b"\x0a" + _varint(inner) + head
            h = hashlib.sha256(prefix)
            h.update(chunk)
            h.update(tail)
            link = (_SHA256 + h.digest(), len(prefix) + n + len(tail), n)
        self._leaves += 1
        self._push(0, link)

    def _push(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(link)
        if len(self._levels[level]) == MAX_LINKS:
            parent = self._parent(self._levels[level])
            self._levels[level] = []
            self._push(level + 1, parent)

    def _parent(self, children: list[_Link]) -> _Link:
        size = sum(c[2] for c in children)
        blocksizes = b"".join(b"\x20" + _varint(c[2]) for c in children)
        unixfs = b"\x08\x02\x18" + _varint(size) + blocksizes
        block = _dag_pb_block([(c[0], b"", c[1]) for c in children], unixfs)
        cid = _cid_bytes(block, _V1_DAG_PB if self._v1 else b"")
        return cid, len(block) + sum(c[1] for c in children), size


def file_node(path: str | os.PathLike[str], cid_version: int = 0) -> DagNode:
    """The UnixFS DAG root of a file, streamed from disk."""
    cid, tsize, size = _file_link(path, cid_version)
    return DagNode(_cid_str(cid), tsize, size)


def read_pieces(path: str | os.PathLike[str], size: int = _READ_SIZE) -> Iterator[bytes | memoryview]:
    """A file's bytes in pieces of at most ``size``, for hashing (each valid until the next).

    A file smaller than one piece is read whole (``readall`` sizes its buffer from
    ``fstat``): allocating and zeroing a 1 MiB buffer per file cost more than hashing it.
    """
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size < size:
            yield f.readall()
            return
        buf = bytearray(size)
        view = memoryview(buf)
        while n := f.readinto(buf):
            yield view[:n]


def _file_link(path: str | os.PathLike[str], cid_version: int) -> _Link:
    """A file's root as (CID bytes, Tsize, size), streamed from disk."""
    builder = FileCidBuilder(cid_version)
    try:
        for piece in read_pieces(path):
            builder.update(piece)
    except OSError as e:
        raise SourceError(f"cannot read {os.fspath(path)!s}: {e.strerror or e}") from e
    return builder._finish_link()


def _symlink_link(target: str, cid_version: int) -> _Link:
    """A symlink as ``ipfs add -r`` stores it: (CID bytes, Tsize, size 0).

    PBNode{Data: UnixFS{Type=Symlink(4), Data=target}}, no links, as boxo's
    ``unixfs.SymlinkData``; dag-pb whatever the CID version (raw leaves are file chunks only).
    """
    raw = os.fsencode(target)
    unixfs = b"\x08\x04" + (_bytes_field(0x12, raw) if raw else b"")
    block = _bytes_field(0x0A, unixfs)
    return _cid_bytes(block, _V1_DAG_PB if cid_version else b""), len(block), 0


def _name_bytes(name: str) -> bytes:
    if not name or name in (".", "..") or "/" in name:
        raise ValueError(f"invalid directory entry name {name!r}")
    return name.encode("utf-8", "surrogateescape")


def directory_node(entries: Mapping[str, DagNode], cid_version: int = 0) -> DagNode:
    """A basic UnixFS directory over ``entries`` (name -> child root), one level."""
    if cid_version not in (0, 1):
        raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
    links = [(name, _cid_raw(node.cid), node.tsize, node.size) for name, node in entries.items()]
    cid, tsize, size = _directory_link(links, cid_version)
    return DagNode(_cid_str(cid), tsize, size)


def _directory_link(
    entries: list[tuple[str, bytes, int, int]],
    cid_version: int,
    blocks: list[tuple[bytes, bytes]] | None = None,
) -> _Link:
    """A basic directory over (name, CID bytes, Tsize, size) entries: (CID bytes, Tsize, size).

    ``blocks``, if given, receives every directory block made: (CID bytes, block bytes).
    """
    links = sorted(
        ((_name_bytes(name), cid, tsize) for name, cid, tsize, _ in entries), key=lambda link: link[0]
    )
    size = sum(entry[3] for entry in entries)
    if hamt.needs_sharding(sum(len(name) + len(cid) for name, cid, _ in links)):
        return (*hamt.shard(links, _V1_DAG_PB if cid_version else b"", blocks), size)
    block = _dag_pb_block([(cid, name, tsize) for name, cid, tsize in links], b"\x08\x01")
    cid = _cid_bytes(block, _V1_DAG_PB if cid_version else b"")
    if blocks is not None:
        blocks.append((cid, block))
    tsize = len(block) + sum(link[2] for link in links)
    return cid, tsize, size


def _split(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts:
        raise ValueError(f"{path!r} is not a relative POSIX path inside the tree")
    return parts


def tree_node(
    files: Mapping[str, DagNode | None], cid_version: int = 0
) -> tuple[DagNode, dict[str, DagNode]]:
    """Build every directory over ``files`` (relative path -> file node, None = empty dir).

    Returns the root and ``{dir_relpath: node}`` for every directory, ``""`` being the root.
    Each file's CID is decoded once and each directory's encoded once: the work is linear
    in the number of files.
    """
    if cid_version not in (0, 1):
        raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
    links = _tree_links(_file_links(files), cid_version)
    dirs = {here: DagNode(_cid_str(cid), tsize, size) for here, (cid, tsize, size) in links.items()}
    return dirs[""], dirs


def tree_blocks(
    files: Mapping[str, DagNode | None], cid_version: int = 0
) -> tuple[DagNode, list[tuple[bytes, bytes]]]:
    """The root :func:`tree_node` builds and every directory block under it (shards too),
    as (CID bytes, block bytes), children before parents: what a CAR of the folder's
    directories holds (the file blocks are not made here)."""
    blocks: list[tuple[bytes, bytes]] = []
    cid, tsize, size = _tree_links(_file_links(files), cid_version, blocks)[""]
    return DagNode(_cid_str(cid), tsize, size), blocks


def _file_links(files: Mapping[str, DagNode | None]) -> dict[str, _Link | None]:
    """Nodes as binary links (CID bytes, Tsize, size); None (an empty folder) stays None."""
    return {
        path: None if node is None else (_cid_raw(node.cid), node.tsize, node.size)
        for path, node in files.items()
    }


def _tree_links(
    files: Mapping[str, _Link | None],
    cid_version: int,
    blocks: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, _Link]:
    """Every directory over ``files`` (relative path -> file link, None = empty dir), binary."""
    # dir path -> {name: file link (CID bytes, Tsize, size), or None for a subdirectory}
    tree: dict[str, dict[str, _Link | None]] = {"": {}}
    for path, link in files.items():
        parts = _split(path)
        if not parts and link is not None:
            raise ValueError(f"{path!r} names the root directory, not a file")
        parent = ""
        for depth, name in enumerate(parts):
            here = f"{parent}/{name}" if parent else name
            siblings = tree[parent]
            if depth == len(parts) - 1 and link is not None:
                if name in siblings:
                    raise ValueError(f"{here!r} is given twice, or as both file and directory")
                siblings[name] = link
            elif siblings.setdefault(name, None) is not None:
                raise ValueError(f"{here!r} is both a file and a directory")
            elif here not in tree:
                tree[here] = {}
            parent = here
    links: dict[str, _Link] = {}
    done: dict[str, _Link] = {}
    for here in sorted(tree, key=lambda d: d.count("/") + bool(d), reverse=True):
        entries = []
        for name, child in tree[here].items():
            link = child if child is not None else links.pop(f"{here}/{name}" if here else name)
            entries.append((name, *link))
        links[here] = done[here] = _directory_link(entries, cid_version, blocks)
    return done


def _tree_link(
    root: str,
    cid_version: int,
    skip_unreadable: bool,
    follow_symlinks: bool,
    symlinks: str = "follow",
    hidden: bool = True,
) -> _Link:
    """The directory at ``root``, built bottom-up from one walk of the disk.

    The walk is :func:`jupyter_publish.walk.walk_tree`, the one publishing uses: the same
    entries are unreadable, skipped or refused (outside symlinks, loops) in both. Everything
    stays binary (CID bytes): only the caller encodes the one string it needs.
    """
    from .walk import skipped_line, walk_tree

    walked = walk_tree(
        root,
        skip_unreadable=skip_unreadable,
        follow_symlinks=follow_symlinks,
        verb="compute the CID of",
        symlinks=symlinks,
        hidden=hidden,
    )
    files: dict[str, _Link | None] = {f.name: _file_link(f.path, cid_version) for f in walked.files}
    files.update((link.name, _symlink_link(link.target, cid_version)) for link in walked.links)
    files.update(dict.fromkeys(walked.dirs))
    if walked.skipped:
        warnings.warn(f"{root}: {skipped_line(walked.skipped)}; the CID leaves them out", stacklevel=3)
    return _tree_links(files, cid_version)[""]


def cid_of(
    path: str | os.PathLike[str],
    cid_version: int = 0,
    *,
    skip_unreadable: bool = False,
    follow_symlinks: bool = False,
    symlinks: str = "node",
    hidden: bool = True,
    raw_leaves: bool | None = None,
    chunker: str = CHUNKER,
) -> str:
    """The CID ``ipfs add [-r --hidden]`` gives a file or a whole directory tree.

    Empty directories are included, and hidden entries unless ``hidden=False`` (``ipfs
    add -r`` without ``--hidden``). A symlink inside a folder is a UnixFS symlink node
    (``symlinks="node"``, as ``ipfs add -r``); ``symlinks="follow"`` hashes its target as
    a publish does, a link out of the folder then refused unless ``follow_symlinks``.
    ``path`` itself is always followed. Anything unreadable fails in one line (or, with
    ``skip_unreadable``, is left out with a one-line warning): never a silently partial tree.
    ``raw_leaves`` and ``chunker`` are accepted so a result's :func:`cid_params` round-trip;
    only Kubo's defaults exist (raw leaves exactly for CIDv1, fixed 256 KiB chunks).
    """
    _check_params(cid_version, raw_leaves, chunker)
    hidden = _flag("hidden", hidden)
    from .walk import SYMLINK_MODES, stat_named

    if symlinks not in SYMLINK_MODES:  # refused for a file too: the params must mean something
        raise ValueError(f"symlinks must be 'node' or 'follow', not {symlinks!r}")
    path = os.fspath(path)
    st = stat_named(path, "compute the CID of")
    try:
        if stat.S_ISREG(st.st_mode):
            return file_node(path, cid_version).cid
        if stat.S_ISDIR(st.st_mode):
            link = _tree_link(path, cid_version, skip_unreadable, follow_symlinks, symlinks, hidden)
            return _cid_str(link[0])
    except SourceError:
        raise
    except OSError as e:
        raise SourceError(f"cannot read {e.filename or path}: {e.strerror or e}") from e
    raise SourceError(f"{path}: not a regular file or directory")


def _check_params(cid_version: int, raw_leaves: bool | None, chunker: str) -> None:
    if cid_version not in (0, 1):
        raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
    if raw_leaves is not None and bool(raw_leaves) != (cid_version == 1):
        raise ValueError(
            f"raw_leaves={raw_leaves!r} with CIDv{cid_version} is not supported: raw leaves go with CIDv1"
        )
    if chunker != CHUNKER:
        raise ValueError(f"chunker {chunker!r} is not supported: only {CHUNKER!r} (Kubo's default)")


def _flag(name: str, value: Any) -> bool:
    """A True/False keyword (numpy's bool too, as a DataFrame row gives it); never a truthy
    string: ``hidden="false"`` from a hand-edited record must not quietly mean True."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, int | float | str | bytes):
        try:
            if value in (True, False):
                return bool(value)
        except (TypeError, ValueError):  # pandas.NA: its truth is ambiguous
            pass
    raise ValueError(f"{name} must be True or False, not {value!r}")


def cid_params(cid_version: int = 0, *, hidden: bool = True, symlinks: str = "follow") -> dict[str, Any]:
    """How a CID was made, as ``cid_of`` keywords: ``cid_of(path, **cid_params(...))`` recomputes it.

    The ``ipfs add`` flags they stand for: ``--cid-version``, ``--raw-leaves``,
    ``--chunker``, ``--hidden``; ``symlinks`` is ``node`` (``ipfs add -r``) or ``follow``
    (the target's bytes, what a publish uploads and so what its root CID is over).
    """
    return {
        "cid_version": cid_version,
        "raw_leaves": cid_version == 1,
        "chunker": CHUNKER,
        "hidden": bool(hidden),
        "symlinks": symlinks,
    }


CID_PARAM_KEYS: tuple[str, ...] = ("cid_version", "raw_leaves", "chunker", "hidden", "symlinks")
_PARAM_TYPES: dict[str, type] = {
    "cid_version": int,
    "raw_leaves": bool,
    "chunker": str,
    "hidden": bool,
    "symlinks": str,
}


def recorded_params(value: Any) -> dict[str, Any]:
    """The ``cid_params`` a stored record holds, read as data: exactly :data:`CID_PARAM_KEYS`.

    A value of the wrong type (or a record whose params are not a mapping at all) is
    ``None``, unknown, never guessed; an unknown key is dropped, so a record can never
    put its own ``cid`` or ``path`` over a row's. Values of the right type are kept as
    recorded (``cid_of`` refuses the ones it cannot honour, in one line). Nothing
    recorded (``None``, ``{}``): ``{}``, and the caller applies the defaults then in force.
    """
    if not value:
        return {}
    if not isinstance(value, Mapping):
        value = {}
    out: dict[str, Any] = {}
    for key, kind in _PARAM_TYPES.items():
        got = value.get(key)
        right = isinstance(got, kind) and not (kind is int and isinstance(got, bool))
        out[key] = got if right and not (isinstance(got, str) and len(got) > 100) else None
    return out


def parse_cid(text: str) -> CID:
    """Parse a CID string (any multibase); raise :class:`CidError` if it is not one."""
    shown = repr(text) if len(str(text)) <= 100 else repr(str(text)[:100] + "…")
    if not isinstance(text, str):
        raise CidError(f"{shown} is not a valid CID: not a string")
    try:
        return CID.decode(text.strip())
    except (ValueError, KeyError, TypeError, IndexError) as e:  # IndexError: a bare "b"
        reason = e.args[0] if e.args else type(e).__name__
        raise CidError(f"{shown} is not a valid CID: {reason}") from None


def normalize_cid(text: str) -> str:
    """Canonical string: CIDv0 stays base58btc ``Qm…``, CIDv1 becomes base32 lowercase."""
    cid = parse_cid(text)
    return cid.encode() if cid.version == 0 else cid.encode("base32")


def same_content_cid(a: str, b: str) -> bool:
    """True if both CIDs name the same block (same codec and multihash, any version/base)."""
    ca, cb = parse_cid(a), parse_cid(b)
    return ca.codec == cb.codec and ca.digest == cb.digest


def cid_v1(text: str) -> str:
    """The CIDv1 base32 form of a CID (a v0 ``Qm…`` becomes dag-pb ``bafy…``)."""
    cid = parse_cid(text)
    return CID("base32", 1, cid.codec, cid.digest).encode()
