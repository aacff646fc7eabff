"""Many small files: cost per file must stay small and constant (issue 8, item 5).

A folder of 20,000 small files once took 33 s and 611 MB to publish and 10 s to get its
CID: a thread per file, a 1 MiB buffer per file, a chunk buffer kept by every finished
hasher, a CID library that validated types on every call, a full table scan per ledger
lookup. These tests observe those costs directly (threads started, bytes held, files
opened, SQL statements run), never the clock: timing belongs in ``benchmarks/``.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import sqlite3
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from multiformats import CID

import jupyter_publish.ledger as ledger_module
from jupyter_publish.bundle import collect
from jupyter_publish.cid import DagNode, cid_of, directory_node, file_node, tree_node
from jupyter_publish.hashing import INLINE_BYTES, ContentHasher, HashingReader, hash_file
from jupyter_publish.ledger import Ledger
from jupyter_publish.results import FileRecord, PublishedResult

KiB = 1024


@contextmanager
def threads_started() -> Iterator[set[int]]:
    """The idents of threads that start (and run any Python) inside the block.

    ``threading.setprofile`` installs a hook in every thread the threading module
    starts, so even a thread that starts and ends at once is seen.
    """
    started: set[int] = set()

    def hook(frame: Any, event: str, arg: Any) -> None:
        started.add(threading.get_ident())
        sys.setprofile(None)

    threading.setprofile(hook)
    try:
        yield started
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]


_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str):
        _opened.append(args[0])


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only inside files_opened()


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """The paths ``open()`` was called on inside the block (Python's ``open`` audit event)."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


# -- hashing ------------------------------------------------------------------------


def test_small_inputs_hash_inline_without_a_thread() -> None:
    """A background hasher starts its worker only for large inputs, never per small file."""
    blobs = [os.urandom(2 * KiB) for _ in range(500)]
    with threads_started() as started:
        hashers = []
        for blob in blobs:
            hasher = ContentHasher(0, background=True)
            hasher.update(blob[:1000])
            hasher.update(memoryview(blob)[1000:])
            hashers.append(hasher)  # all still open, as a publish holds them
        digests = [h.finish() for h in hashers]
    assert not started
    assert [d.sha256 for d in digests] == [hashlib.sha256(b).hexdigest() for b in blobs]
    inline = ContentHasher(0)
    inline.update(blobs[7])
    assert digests[7] == inline.finish()

    big = os.urandom(INLINE_BYTES + 300 * KiB)  # past the inline allowance: one worker
    with threads_started() as started:
        hasher = ContentHasher(1, background=True)
        for i in range(0, len(big), 64 * KiB):
            hasher.update(big[i : i + 64 * KiB])
        digest = hasher.finish()
    assert len(started) == 1
    assert not any(t.name == "jupyter-publish-hash" for t in threading.enumerate())
    reference = ContentHasher(1)
    reference.update(big)
    assert digest == reference.finish()


def test_readers_at_end_of_file_seal_their_hashers(tmp_path: Path) -> None:
    """Reading a file to its end finishes its hash: no thread, no buffer waits for finish()."""
    paths = []
    for i in range(300):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(i * 7))
        paths.append(path)
    with threads_started() as started:
        readers = []
        for path in paths:
            source = open(path, "rb")  # noqa: SIM115 (closed with its reader below)
            reader = HashingReader(source, ContentHasher(0, background=True), path.stat().st_size)
            while reader.read(1000):
                pass
            readers.append(reader)  # not closed, not finished: only read to the end
    assert not started
    assert all(r.hasher is not None and r.hasher.finished for r in readers)
    assert [r.hasher.finish() for r in readers if r.hasher] == [hash_file(str(p)) for p in paths]
    for reader in readers:
        reader.close()


def test_bytes_after_the_end_are_counted_not_hashed() -> None:
    """A source that grows after its end was seen shows up as a size mismatch, not a crash."""

    class Growing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            if not data and not getattr(self, "grew", False):
                self.grew = True
                self.write(b"late")
                self.seek(-4, io.SEEK_CUR)
            return data

    hasher = ContentHasher()
    reader = HashingReader(Growing(b"abc"), hasher, 3)
    assert reader.read(10) == b"abc"
    assert reader.read(10) == b""
    assert hasher.finished
    assert reader.read(10) == b"late"
    assert reader.bytes_read == 7 != reader.expected_size
    assert hasher.finish().sha256 == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("cid_version", [0, 1])
def test_finished_hashers_hold_no_buffers(cid_version: int) -> None:
    """Holding every file's finished hasher costs its digest, not its last chunk (~200 KiB)."""
    chunk = os.urandom(200 * KiB)  # under one UnixFS chunk: all of it waits in the builder
    count = 60
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = []
        for _ in range(count):
            hasher = ContentHasher(cid_version, background=True)
            hasher.update(chunk)
            hasher.finish()
            kept.append(hasher)
        held = tracemalloc.get_traced_memory()[0] - before
        abandoned = []
        for _ in range(count):
            hasher = ContentHasher(cid_version)
            hasher.update(chunk)
            hasher.abandon()
            abandoned.append(hasher)
        held_abandoned = tracemalloc.get_traced_memory()[0] - before - held
    finally:
        tracemalloc.stop()
    assert held < count * 4 * KiB, f"{held / count:.0f} bytes per finished hasher"
    assert held_abandoned < count * 4 * KiB, f"{held_abandoned / count:.0f} bytes per abandoned hasher"


# -- CIDs -----------------------------------------------------------------------------


def _reference_file_cid(data: bytes, cid_version: int) -> str:
    """A single-chunk file's CID from hashlib and multiformats alone (no jupyter_publish.cid)."""
    if cid_version == 1:  # raw leaf
        return CID("base32", 1, "raw", b"\x12\x20" + hashlib.sha256(data).digest()).encode()

    def varint(n: int) -> bytes:
        out = bytearray()
        while n > 0x7F:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes([*out, n])

    # PBNode{Data=1: UnixFS{Type=1: File(2), Data=2: bytes (omitted when empty), filesize=3}}
    unixfs = b"\x08\x02" + (b"\x12" + varint(len(data)) + data if data else b"") + b"\x18" + varint(len(data))
    block = b"\x0a" + varint(len(unixfs)) + unixfs
    return CID("base58btc", 0, "dag-pb", b"\x12\x20" + hashlib.sha256(block).digest()).encode()


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], list[str]]:
    """2,000 small files in 20 nested folders, plus hidden files and empty folders."""
    root = tmp_path_factory.mktemp("many")
    rng = random.Random(8)
    files: dict[str, bytes] = {}
    for d in range(20):
        folder = f"g{d % 3}/d{d:02d}"
        (root / folder).mkdir(parents=True)
        for f in range(100):
            name = f"{folder}/{'.' if f % 37 == 0 else ''}f{f:03d}.dat"
            data = rng.randbytes(rng.choice([0, 1, 100, 2048, 3000]))
            (root / name).write_bytes(data)
            files[name] = data
    empty = ["g0/empty", "g1/d01/nothing"]
    for name in empty:
        (root / name).mkdir()
    return root, files, empty


@pytest.mark.parametrize("cid_version", [0, 1])
def test_cid_of_many_files_matches_a_reference(
    small_tree: tuple[Path, dict[str, bytes], list[str]], cid_version: int
) -> None:
    root, files, empty = small_tree
    nodes: dict[str, DagNode | None] = {}
    for i, (name, data) in enumerate(files.items()):
        node = file_node(root / name, cid_version)
        if i % 5 == 0:  # the hand-written CID encoders give multiformats' strings
            assert node.cid == _reference_file_cid(data, cid_version), name
        nodes[name] = node
    nodes.update({name: None for name in empty})

    def directory(path: str) -> DagNode:  # bottom-up with the public directory_node
        prefix = f"{path}/" if path else ""
        children = {rel[len(prefix) :].split("/")[0] for rel in nodes if rel.startswith(prefix)}
        entries = {}
        for child in children:
            node = nodes.get(prefix + child)  # None: a folder (empty or not)
            entries[child] = node if node is not None else directory(prefix + child)
        return directory_node(entries, cid_version)

    reference = directory("")
    root_node, dirs = tree_node(nodes, cid_version)
    assert root_node == reference
    assert dirs["g1/d01"] == directory("g1/d01")
    assert len(dirs) == 1 + 3 + 20 + len(empty)
    assert cid_of(root, cid_version) == reference.cid
    assert CID.decode(reference.cid).version == cid_version


# -- bundle -------------------------------------------------------------------------


def test_collect_20000_files_opens_none_and_stays_small(tmp_path: Path) -> None:
    """collect() stats each file and checks access; it never opens one, and holds ~0.5 KiB each."""
    root = tmp_path / "many"
    count = 20_000
    original = tmp_path / "original"
    original.write_bytes(b"x" * 2048)
    for d in range(100):
        folder = root / f"d{d // 10}" / f"e{d:03d}"
        folder.mkdir(parents=True)
        for f in range(count // 100):
            os.link(original, folder / f"f{f:04d}")  # hard links: 20,000 new inodes can take 10 s
    tracemalloc.start()
    try:
        with files_opened() as opened:
            bundle = collect(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bundle.files) == count
    assert bundle.files[0].name == "d0/e000/f0000"
    assert not [p for p in opened if p.startswith(str(root))]
    assert peak < count * 1 * KiB, f"{peak / count:.0f} bytes per file"


# -- ledger -------------------------------------------------------------------------


def _result(job_id: str, count: int) -> PublishedResult:
    files = [
        FileRecord(
            f"d{i // 100}/f{i}.bin",
            2048,
            f"{i:064x}",
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
            "file",
            f"local://{job_id}/d{i // 100}/f{i}.bin",
        )
        for i in range(count)
    ]
    return PublishedResult(
        job_id=job_id,
        execution_id="e-1",
        node_id="n-1",
        type="local",
        destination="local",
        uri=f"local://{job_id}/",
        params={},
        files=files,
        created_at="2026-01-01T00:00:00Z",
    )


@contextmanager
def traced_sql(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], list[int]]]:
    """Every SQL statement the ledger runs, and how many connections it opened."""
    statements: list[str] = []
    connections: list[int] = []
    connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.set_trace_callback(statements.append)
        connections.append(1)
        return db

    monkeypatch.setattr(ledger_module.sqlite3, "connect", traced_connect)
    try:
        yield statements, connections
    finally:
        monkeypatch.undo()


def test_a_5000_file_job_is_written_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.start(
        job_id="j-big", execution_id="e-1", node_id="n-1", name="x", scheme="local", destination="local"
    )
    result = _result("j-big", 5000)
    with traced_sql(monkeypatch) as (statements, connections):
        ledger.finish(result)
    inserts = [s for s in statements if s.startswith("INSERT OR REPLACE INTO files")]
    others = [s for s in statements if not s.startswith("INSERT OR REPLACE INTO files")]
    assert len(inserts) == 5000
    assert len(connections) == 1
    assert sum(s.strip() == "BEGIN" for s in others) == 1
    assert sum(s.strip() == "COMMIT" for s in others) == 1
    assert len(others) < 10, others  # no per-file SELECT, UPDATE or PRAGMA
    assert len(ledger.files("j-big")) == 5000


def test_lookups_by_location_use_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetching a prefix looks up every object: each lookup must be an index search, not a scan."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for job in ("j-1", "j-2"):
        ledger.start(job_id=job, execution_id="e", node_id="n", name="x", scheme="local", destination="local")
        ledger.finish(_result(job, 2000))
    with sqlite3.connect(ledger.path) as db:
        db.execute("ANALYZE")  # with statistics SQLite once preferred scanning every row
    with traced_sql(monkeypatch) as (statements, _):
        ledger.find_by_location("local://j-1/d3/f321.bin")
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert queries
    with sqlite3.connect(ledger.path) as db:
        for query in queries:  # the statements as run, values bound
            plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + query)]
            assert not [step for step in plan if step.startswith("SCAN")], plan
    wanted = [f"local://j-2/d{i // 100}/f{i}.bin" for i in range(0, 2000, 7)] + ["local://j-9/none"]
    with traced_sql(monkeypatch) as (_, connections):
        found = ledger.find_by_locations(wanted)
    assert len(connections) == 1
    assert sorted(found) == sorted(wanted[:-1])
    assert found[wanted[3]]["sha256"] == f"{21:064x}" and found[wanted[3]]["job_id"] == "j-2"
    assert ledger.find_by_location(wanted[3]) == found[wanted[3]]
    assert ledger.find_by_location("local://j-9/none") is None
