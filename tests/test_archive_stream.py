"""ArchiveStream: a bundle's archive made while it is read, compressed on every core."""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import os
import random
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from reference_archive import write_archive

from jupyter_publish import archive as archive_module
from jupyter_publish.archive import BLOCK, ArchiveStream, _HeaderMaker, tar_header
from jupyter_publish.bundle import Bundle, collect
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import PublishError, SourceError
from jupyter_publish.hashing import hash_file

LONG_NAME = "a" * 60 + "/" + "b" * 60 + ".txt"  # > 100 chars: a PAX header


def _csv(rows: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    return "".join(f"{i},{rnd.random():.6f},{rnd.randint(0, 999)}\n" for i in range(rows)).encode()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Every kind of entry: several blocks, tiny and empty files, long and non-ASCII names."""
    root = tmp_path / "results"
    files = {
        "table.csv": _csv(20_000),
        "plots/fig.svg": b"<svg/>",
        "big/random.bin": random.Random(2).randbytes(2 * BLOCK + 12_345),
        "empty.txt": b"",
        "exact512.bin": b"x" * 512,
        LONG_NAME: b"long",
        "ünïcode/naïve.txt": "ça va\n".encode(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty").mkdir()
    (root / "nested/empty2").mkdir(parents=True)
    return root


def drain(stream: ArchiveStream, size: int = 65536, *, into: bool = False) -> bytes:
    """Read the whole stream, with read(size) or readinto of a size-byte buffer."""
    out = bytearray()
    if into:
        buf = bytearray(size)
        while n := stream.readinto(buf):
            out += buf[:n]
    else:
        while chunk := stream.read(size):
            out += chunk
    return bytes(out)


def archive_bytes(bundle: Bundle, **kwargs) -> tuple[bytes, ArchiveStream]:
    stream = ArchiveStream(bundle, **kwargs)
    try:
        return drain(stream, 1 << 20), stream
    finally:
        stream.close()


def zstd_module():
    return pytest.importorskip("compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd")


def decompress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.decompress(data)
    if compression == "zstd":
        return zstd_module().decompress(data)
    return data


def our_threads() -> list[str]:
    """The stream's producer and compressors (other modules' threads are not ours to judge)."""
    names = ("jupyter-publish-archive", "jupyter-publish-compress")
    return [t.name for t in threading.enumerate() if t.name.startswith(names)]


def source_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the tar inside


def test_tar_is_byte_identical_to_write_archive(tree: Path, tmp_path: Path) -> None:
    """Same headers, order, padding and end as today's tarfile-made archive, file digests too."""
    bundle = collect(tree)
    digests, _ = write_archive(bundle, tmp_path / "ref.tar.gz")
    expected = gzip.decompress((tmp_path / "ref.tar.gz").read_bytes())
    tar, stream = archive_bytes(bundle, compression="none")
    assert tar == expected
    assert stream.digests == digests


@pytest.mark.parametrize("mode", [0o644, 0o755, 0o600])
def test_fast_headers_equal_tarfile_headers(mode: int) -> None:
    make = _HeaderMaker()
    names = ["a", "x" * 99, "y" * 100, "z" * 101, "dir/sub/file.csv", "é.txt", "tab\tname", "sp ace"]
    sizes = [0, 1, 511, 512, 513, BLOCK, 8**11 - 1, 8**11, 10 * 2**30]
    for name in names:
        for size in sizes:
            assert make(name, size, mode) == tar_header(name, size, mode), (name, size)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_round_trip_through_tarfile(tree: Path, compression: str) -> None:
    if compression == "zstd":
        zstd_module()
    data, stream = archive_bytes(collect(tree), compression=compression, threads=2)
    with tarfile.open(fileobj=io.BytesIO(decompress(data, compression))) as tar:
        members = tar.getmembers()
        got = {m.name: tar.extractfile(m).read() for m in members if m.isreg()}  # type: ignore[union-attr]
    assert got == source_files(tree)
    assert {m.name for m in members if m.isdir()} == {"empty", "nested/empty2"}
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert next(m for m in members if m.name == "run.sh").mode == 0o755
    assert stream.suffix == {"gzip": ".tar.gz", "zstd": ".tar.zst", "none": ".tar"}[compression]
    assert stream.content_type.startswith("application/")


@pytest.mark.parametrize(
    ("compression", "suffix", "flags"),
    [("gzip", ".tar.gz", ["xzf"]), ("none", ".tar", ["xf"]), ("zstd", ".tar.zst", ["--zstd", "-xf"])],
)
def test_system_tar_extracts_it(tree: Path, tmp_path: Path, compression: str, suffix: str, flags) -> None:
    if compression == "zstd":
        zstd_module()
        if shutil.which("zstd") is None:
            pytest.skip("no zstd binary for tar --zstd")
    data, _ = archive_bytes(collect(tree), compression=compression, threads=3)
    path = tmp_path / f"out{suffix}"
    path.write_bytes(data)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", *flags, str(path), "-C", str(out)], check=True)
    assert source_files(out) == source_files(tree)
    assert (out / "empty").is_dir() and (out / "nested/empty2").is_dir()
    if compression == "gzip":
        subprocess.run(["gzip", "-t", str(path)], check=True)
    if compression == "zstd":
        subprocess.run(["zstd", "-q", "-t", str(path)], check=True)


def test_gzip_is_one_member_per_block(tree: Path) -> None:
    """Block boundaries are fixed: every member but the last holds exactly BLOCK bytes."""
    data, _ = archive_bytes(collect(tree), threads=2)
    sizes = []
    rest = data
    while rest:
        assert rest[:4] == b"\x1f\x8b\x08\x00" and rest[4:8] == b"\0\0\0\0"  # no name, no mtime
        member = zlib.decompressobj(31)
        sizes.append(len(member.decompress(rest)))
        assert member.eof
        rest = member.unused_data
    tar_size = len(gzip.decompress(data))
    assert sizes[:-1] == [BLOCK] * (len(sizes) - 1)
    assert sum(sizes) == tar_size and len(sizes) == -(-tar_size // BLOCK) >= 3


def test_zstd_is_one_frame_per_block(tree: Path) -> None:
    zstd = zstd_module()
    data, _ = archive_bytes(collect(tree), compression="zstd", threads=2)
    sizes = []
    rest = data
    while rest:
        sizes.append(zstd.get_frame_info(rest).decompressed_size)
        rest = rest[zstd.get_frame_size(rest) :]
    assert sizes[:-1] == [BLOCK] * (len(sizes) - 1) and len(sizes) >= 3


# --------------------------------------------------------------------------- determinism, levels


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_same_bytes_whatever_the_threads_and_read_sizes(tree: Path, compression: str) -> None:
    if compression == "zstd":
        zstd_module()
    bundle = collect(tree)
    outputs = set()
    for threads, size, into in [(1, 1 << 20, False), (4, 1000, True), (4, 7_777, False), (2, 65536, True)]:
        stream = ArchiveStream(bundle, compression=compression, threads=threads)
        with stream:
            outputs.add(hashlib.sha256(drain(stream, size, into=into)).hexdigest())
    with ArchiveStream(bundle, compression=compression, threads=3) as stream:
        outputs.add(hashlib.sha256(stream.read()).hexdigest())  # readall
    assert len(outputs) == 1


def test_incompressible_blocks_are_stored_without_deflating(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "rnd"
    root.mkdir()
    (root / "noise.bin").write_bytes(os.urandom(3 * BLOCK))
    deflated: list[int] = []
    real = archive_module._deflate

    def spy(raw, level):
        deflated.append(len(raw))
        return real(raw, level)

    monkeypatch.setattr(archive_module, "_deflate", spy)
    data, _ = archive_bytes(collect(root), threads=2)
    tar_size = len(gzip.decompress(data))
    members = -(-tar_size // BLOCK)
    assert len(data) <= tar_size + members * (18 + 5 * 17)  # gzip header/trailer + stored block heads
    assert BLOCK not in deflated, "a full block of noise was deflated instead of being judged by samples"


def test_gzip_level_1_by_default_and_it_compresses_csv(tmp_path: Path) -> None:
    root = tmp_path / "csv"
    root.mkdir()
    (root / "data.csv").write_bytes(_csv(150_000))  # ~2.4 MB
    bundle = collect(root)
    default, stream = archive_bytes(bundle, threads=2)
    level1, _ = archive_bytes(bundle, level=1, threads=2)
    level6, _ = archive_bytes(bundle, level=6, threads=2)
    assert stream.level == 1 and default == level1
    tar_size = len(gzip.decompress(default))
    assert len(default) < 0.6 * tar_size
    assert len(level6) < len(level1)
    assert default[8:9] == b"\x04"  # XFL: fastest, as gzip -1 writes


def test_bad_arguments_are_one_line_errors(tree: Path) -> None:
    bundle = collect(tree)
    with pytest.raises(PublishError, match="unknown compression 'lz4': use one of gzip, zstd, none"):
        ArchiveStream(bundle, compression="lz4")
    with pytest.raises(PublishError, match="gzip level must be 0 to 9"):
        ArchiveStream(bundle, level=12)
    assert our_threads() == []


def test_missing_zstd_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['backports.zstd'] = sys.modules['compression.zstd'] = None\n"
        "from jupyter_publish.archive import ArchiveStream\n"
        "from jupyter_publish.bundle import Bundle\n"
        "from jupyter_publish.errors import PublishError\n"
        "try:\n"
        "    ArchiveStream(Bundle([], ['d']), compression='zstd')\n"
        "except PublishError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "compression='zstd' needs: pip install 'jupyter-publish[zstd]'"


# --------------------------------------------------------------------------- digests, progress


@pytest.mark.parametrize("cid_version", [0, 1])
def test_digests_are_each_files_sha256_and_cid(tree: Path, cid_version: int) -> None:
    stream = ArchiveStream(collect(tree), cid_version=cid_version, threads=2)
    with pytest.raises(RuntimeError, match="only after the whole archive was read"):
        _ = stream.digests
    drain(stream)
    digests = stream.digests
    stream.close()
    assert sorted(digests) == sorted(source_files(tree))
    for name, digest in digests.items():
        path = tree / name
        assert digest.size == path.stat().st_size
        assert digest.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest.cid == cid_of(path, cid_version)
        assert digest == hash_file(str(path), cid_version)


def test_progress_counts_file_bytes_in_the_readers_thread(tree: Path) -> None:
    calls: list[tuple[int, int]] = []
    with ArchiveStream(collect(tree), progress=lambda n: calls.append((n, threading.get_ident()))) as s:
        drain(s)
    assert sum(n for n, _ in calls) == sum(len(d) for d in source_files(tree).values())
    assert {ident for _, ident in calls} == {threading.get_ident()}


# --------------------------------------------------------------------------- changes, failures, threads


@pytest.mark.parametrize(
    ("change", "word"),
    [
        (lambda p: p.write_bytes(p.read_bytes() + b"more"), "grew"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "shrank"),
        (lambda p: p.unlink(), "was deleted"),
    ],
)
def test_a_file_that_changes_while_archived_is_a_source_error(tree: Path, change, word: str) -> None:
    bundle = collect(tree)
    change(tree / "table.csv")
    stream = ArchiveStream(bundle, threads=2)
    with pytest.raises(SourceError) as info:
        drain(stream)
    message = str(info.value)
    assert "\n" not in message and word in message and str(tree / "table.csv") in message
    with pytest.raises(SourceError):  # it stays failed
        stream.read(1)
    stream.close()
    assert our_threads() == []


def big_bundle(tmp_path: Path, size: int) -> Bundle:
    root = tmp_path / "big"
    root.mkdir()
    with open(root / "noise.bin", "wb") as fh:
        for _ in range(size // BLOCK):
            fh.write(os.urandom(BLOCK))
    return collect(root)


def test_close_mid_stream_stops_every_thread(tmp_path: Path) -> None:
    bundle = big_bundle(tmp_path, 24 * BLOCK)
    stream = ArchiveStream(bundle, threads=4)
    assert stream.read(100_000)
    time.sleep(0.2)  # let the producer fill the queue and block on it
    assert our_threads()
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 5
    assert our_threads() == []
    with pytest.raises(ValueError, match="closed"):
        stream.read(1)


def test_an_abandoned_stream_is_collected_and_stops(tmp_path: Path) -> None:
    stream = ArchiveStream(big_bundle(tmp_path, 24 * BLOCK), threads=2)
    stream.read(10)
    time.sleep(0.2)
    del stream
    gc.collect()
    deadline = time.monotonic() + 5
    while our_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_threads() == []


def test_close_from_another_thread_wakes_a_blocked_reader(tmp_path: Path) -> None:
    # 4 GiB (sparse: instant to make) takes seconds to hash, so the reader is still
    # waiting for blocks when close() comes, however fast this machine is.
    root = tmp_path / "sparse"
    root.mkdir()
    with open(root / "zeros.bin", "wb") as fh:
        fh.truncate(4 << 30)
    stream = ArchiveStream(collect(root), threads=1)
    outcome: list[object] = []

    def reader() -> None:
        try:
            while stream.read(1 << 20):
                pass
            outcome.append("eof")
        except ValueError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.05)
    stream.close()
    thread.join(5)
    assert not thread.is_alive()
    assert outcome and outcome[0] != "eof"
    assert our_threads() == []


def test_threads_end_at_eof_without_close(tree: Path) -> None:
    stream = ArchiveStream(collect(tree), threads=3)
    drain(stream)
    assert our_threads() == []
    stream.close()


def test_memory_stays_bounded_for_a_big_file(tmp_path: Path) -> None:
    """64 MiB through the stream while at most a few blocks are held: never the whole file."""
    bundle = big_bundle(tmp_path, 64 * BLOCK)
    tracemalloc.start()
    try:
        with ArchiveStream(bundle, threads=2) as stream:
            total = 0
            while chunk := stream.read(BLOCK):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 64 * BLOCK
    assert peak < 20 * BLOCK, f"peak {peak / BLOCK:.1f} MiB"


def test_empty_folders_only(tmp_path: Path) -> None:
    data, stream = archive_bytes(Bundle([], ["a", "b/c"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [(m.name, m.isdir()) for m in tar.getmembers()] == [("a", True), ("b/c", True)]
    assert stream.digests == {}
