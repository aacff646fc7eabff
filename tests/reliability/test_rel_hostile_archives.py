"""Hostile archives: nested thousands of levels deep, decompression bombs.

Each fails in one line (never RecursionError or an OSError traceback), leaves nothing
beside the destination, and the next fetch into the same folder works. Bombs are made
of repeated compressed members (gzip members and zstd frames concatenate), so a
1.5 GiB expansion costs about a megabyte here and the cap trips before writing it.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.errors import UnsafeArchiveError
from jupyter_publish.extract import extract_archive

MiB = 1024 * 1024


def _deep_tar(path: Path, depth: int, *, with_dir_entries: bool) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        if with_dir_entries:  # as `tar` writes a deep tree: one entry per folder
            for level in range(1, depth + 1):
                info = tarfile.TarInfo("/".join(["d"] * level))
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
        info = tarfile.TarInfo("/".join(["d"] * depth) + "/f.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    path.write_bytes(buf.getvalue())
    return path


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _bomb(path: Path, expanded: int, *, zstd: bool = False, truncate_at: int | None = None) -> Path:
    """A tar of one member of ``expanded`` zero bytes, compressed in repeated 1 MiB pieces."""
    if zstd:
        from jupyter_publish.archive import load_zstd

        compress = load_zstd().compress
    else:
        compress = gzip.compress
    piece = compress(b"\0" * MiB)
    total = expanded + 1024  # the member, then tar's two zero end blocks
    if truncate_at is not None:
        total = truncate_at
    with path.open("wb") as out:
        out.write(compress(_tar_header("zeros.bin", expanded)))
        for _ in range(total // MiB):
            out.write(piece)
        out.write(compress(b"\0" * (total % MiB)))
    return path


def _good_job(tmp_path: Path) -> tuple[str, Path]:
    src = tmp_path / "good"
    (src / "empty").mkdir(parents=True)
    (src / "a.txt").write_text("fine\n")
    return jp.publish(src, "local").job_id, src


def _beside(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}"))


@pytest.mark.parametrize("with_dir_entries", [False, True], ids=["file-only", "dir-entries"])
def test_archive_nested_thousands_deep_is_one_line_and_leaves_nothing(tmp_path, with_dir_entries):
    deep = _deep_tar(tmp_path / "deep.tar.gz", 3000, with_dir_entries=with_dir_entries)
    job = jp.publish(deep, "local", archive=False).job_id
    dest = tmp_path / "back"
    with pytest.raises(UnsafeArchiveError) as caught:
        jp.fetch(job, dest)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert "folders deep" in message or "name longer than" in message
    assert not dest.exists() and _beside(dest) == []
    good, _ = _good_job(tmp_path)
    assert jp.fetch(good, dest).verified  # the same destination works next time
    assert (dest / "a.txt").read_text() == "fine\n" and (dest / "empty").is_dir()
    assert _beside(dest) == []


def test_deep_debris_from_an_older_fetch_does_not_break_the_next(tmp_path):
    """Staging left 1500 levels deep (shutil.rmtree recurses: RecursionError) is cleared."""
    dest = tmp_path / "back"
    deep = tmp_path / ".back.jp-partial" / "tree"
    fd = os.open(tmp_path, os.O_RDONLY)
    try:  # build it level by level through directory descriptors: the path is too long
        for name in [".back.jp-partial", "tree", *["d"] * 1500]:
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    assert deep.is_dir()
    good, _ = _good_job(tmp_path)
    assert jp.fetch(good, dest).verified
    assert _beside(dest) == []


@pytest.mark.parametrize("zstd", [False, True], ids=["gzip", "zstd"])
def test_decompression_bomb_is_refused_before_it_is_written(tmp_path, zstd):
    bomb = _bomb(tmp_path / ("bomb.tar.zst" if zstd else "bomb.tar.gz"), 1536 * MiB, zstd=zstd)
    assert bomb.stat().st_size < 4 * MiB  # > 400:1
    job = jp.publish(bomb, "local", archive=False).job_id
    dest = tmp_path / "back"
    started = time.monotonic()
    with pytest.raises(UnsafeArchiveError) as caught:
        jp.fetch(job, dest)
    assert time.monotonic() - started < 10  # refused at the header, not after 1.5 GiB
    message = str(caught.value)
    assert "\n" not in message and "decompression bomb" in message and "max_ratio" in message
    assert not dest.exists() and _beside(dest) == []


def test_the_cli_refuses_a_bomb_in_one_line_and_max_ratio_0_lifts_the_cap(tmp_path):
    """A bomb that is also truncated: lifting the cap shows the next check, not the ratio."""
    bomb = _bomb(tmp_path / "cut.tar.gz", 1536 * MiB, truncate_at=8 * MiB)
    job = jp.publish(bomb, "local", archive=False).job_id

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "jupyter_publish.cli", "fetch", job, "--to", str(tmp_path / "b")]
        return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=60)

    capped = cli()
    assert capped.returncode != 0 and "decompression bomb" in capped.stderr
    assert len(capped.stderr.strip().splitlines()) == 1 and "Traceback" not in capped.stderr
    lifted = cli("--max-ratio", "0")
    assert lifted.returncode != 0 and "decompression bomb" not in lifted.stderr
    assert "corrupt" in lifted.stderr or "truncated" in lifted.stderr or "end of" in lifted.stderr
    assert len(lifted.stderr.strip().splitlines()) == 1
    assert _beside(tmp_path / "b") == [] and not (tmp_path / "b").exists()
    bad = cli("--max-ratio", "-3")
    assert bad.returncode != 0 and "max_ratio" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_ratio_cap_trips_while_streaming_members_each_below_it(tmp_path):
    """Many members, each declared honestly: the running total trips the cap mid-stream."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(6):
            info = tarfile.TarInfo(f"z{i}.bin")
            info.size = MiB
            tf.addfile(info, io.BytesIO(b"\0" * MiB))
    archive = tmp_path / "many.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        extract_archive(archive, tmp_path / "out", max_ratio=200, ratio_floor=2 * MiB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.tar.gz"]
    extract_archive(archive, tmp_path / "out", max_ratio=None, ratio_floor=2 * MiB)
    assert len(list((tmp_path / "out").iterdir())) == 6
