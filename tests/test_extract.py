"""Hostile and benign archives for jupyter_publish.extract, all built in the tests."""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from jupyter_publish.errors import SourceError, UnsafeArchiveError
from jupyter_publish.extract import (
    ArchiveMember,
    _CappedReader,
    _Refused,
    extract_archive,
    is_archive,
    list_archive,
)

# --------------------------------------------------------------------------- builders


def tar_entry(
    name: str, data: bytes | None = b"", *, type_: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = link
    info.mode = mode
    info.mtime = 1_700_000_000
    if type_ == tarfile.REGTYPE and data is not None:
        info.size = len(data)
    return info, (io.BytesIO(data) if type_ == tarfile.REGTYPE and data is not None else None)


def make_tar(path: Path, entries: list, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, fileobj in entries:
            tf.addfile(info, fileobj)
    return path


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: external_attr carries st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every entry under ``path`` with its content, to prove nothing changed."""
    if not path.exists():
        return {}
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(root, name)
            out[p.relative_to(path).as_posix()] = None if p.is_dir() else p.read_bytes()
    return out


def assert_refused(archive: Path, dest: Path, member: str, why: str = "", **caps) -> str:
    """Extraction must fail with one line naming the member, and leave dest as it was."""
    before = snapshot(dest)
    existed = dest.exists()
    siblings = sorted(p.name for p in dest.parent.iterdir())
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, dest, **caps)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"archive {archive.name}: ")
    assert f"'{member}'" in message, message
    assert why in message, message
    assert "nothing extracted" in message
    assert dest.exists() == existed
    assert snapshot(dest) == before
    assert sorted(p.name for p in dest.parent.iterdir()) == siblings, "temporary dir left behind"
    return message


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path


# --------------------------------------------------------------------------- tar: hostile


def test_tar_traversal_refused(work: Path) -> None:
    archive = make_tar(work / "in/results.tar.gz", [tar_entry("ok.txt", b"fine"), tar_entry("../x", b"pwn")])
    msg = assert_refused(archive, work / "out/dest", "../x", "outside the destination")
    assert msg == (
        "archive results.tar.gz: member '../x' would land outside the destination; refused, nothing extracted"
    )
    assert not (work / "out/x").exists()


def test_tar_nested_traversal_refused(work: Path) -> None:
    archive = make_tar(work / "in/a.tar", [tar_entry("a/b/../../../etc/x", b"pwn")], mode="w")
    assert_refused(archive, work / "out/dest", "a/b/../../../etc/x", "outside the destination")


def test_tar_absolute_refused(work: Path) -> None:
    archive = make_tar(work / "in/abs.tgz", [tar_entry("/etc/x", b"pwn")])
    assert_refused(archive, work / "out/dest", "/etc/x", "absolute path")


def test_tar_symlink_to_absolute_then_write_through(work: Path) -> None:
    archive = make_tar(
        work / "in/sym.tar.gz",
        [tar_entry("passwd", None, type_=tarfile.SYMTYPE, link="/etc/passwd"), tar_entry("passwd", b"pwn")],
    )
    assert_refused(archive, work / "out/dest", "passwd", "symlink to the absolute path '/etc/passwd'")


def test_tar_symlink_escaping_then_file_through_it(work: Path) -> None:
    victim = work / "victim"
    victim.mkdir()
    archive = make_tar(
        work / "in/sym.tar.gz",
        [
            tar_entry("link", None, type_=tarfile.SYMTYPE, link="../../victim"),
            tar_entry("link/pwned.txt", b"pwn"),
        ],
    )
    assert_refused(archive, work / "out/dest", "link", "outside the destination")
    assert list(victim.iterdir()) == []


def test_tar_write_through_inside_symlink_refused(work: Path) -> None:
    archive = make_tar(
        work / "in/sym.tar.gz",
        [
            tar_entry("real", None, type_=tarfile.DIRTYPE),
            tar_entry("alias", None, type_=tarfile.SYMTYPE, link="real"),
            tar_entry("alias/f.txt", b"x"),
        ],
    )
    assert_refused(archive, work / "out/dest", "alias/f.txt", "written through the symlink 'alias'")


def test_tar_symlink_redirected_by_later_member(work: Path) -> None:
    """'L -> a/../x' is inside when written, but 'a -> .' later makes it resolve outside."""
    archive = make_tar(
        work / "in/chain.tar.gz",
        [
            tar_entry("L", None, type_=tarfile.SYMTYPE, link="a/../x"),
            tar_entry("a", None, type_=tarfile.SYMTYPE, link="."),
        ],
    )
    assert_refused(archive, work / "out/dest", "L", "resolves outside the destination")


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd"])
def test_tar_hardlink_escape_refused(work: Path, target: str) -> None:
    archive = make_tar(work / "in/hard.tar.gz", [tar_entry("h", None, type_=tarfile.LNKTYPE, link=target)])
    assert_refused(archive, work / "out/dest", "h", "hard link")


def test_tar_hardlink_to_missing_member_refused(work: Path) -> None:
    archive = make_tar(
        work / "in/hard.tar.gz", [tar_entry("h", None, type_=tarfile.LNKTYPE, link="nope.txt")]
    )
    assert_refused(archive, work / "out/dest", "h", "not an earlier file")


@pytest.mark.parametrize(
    ("type_", "word"),
    [(tarfile.CHRTYPE, "device"), (tarfile.BLKTYPE, "device"), (tarfile.FIFOTYPE, "FIFO")],
)
def test_tar_special_files_refused(work: Path, type_: bytes, word: str) -> None:
    info, _ = tar_entry("dev/null", None, type_=type_)
    info.devmajor, info.devminor = 1, 3
    archive = make_tar(work / "in/dev.tar.gz", [tar_entry("a.txt", b"a"), (info, None)])
    assert_refused(archive, work / "out/dest", "dev/null", word)


def test_tar_member_above_cap_refused(work: Path) -> None:
    archive = make_tar(
        work / "in/big.tar.gz", [tar_entry("small", b"x" * 10), tar_entry("big.bin", b"\0" * 5000)]
    )
    assert_refused(archive, work / "out/dest", "big.bin", "per-member cap of 1000", max_member_bytes=1000)


def test_tar_total_cap_refused(work: Path) -> None:
    entries = [tar_entry(f"part{i}.bin", b"\0" * 400) for i in range(3)]
    archive = make_tar(work / "in/total.tar.gz", entries)
    assert_refused(
        archive, work / "out/dest", "part2.bin", "total above the cap of 1000", max_total_bytes=1000
    )


def test_tar_member_count_cap_refused(work: Path) -> None:
    archive = make_tar(work / "in/many.tar.gz", [tar_entry(f"f{i}", b"") for i in range(5)])
    assert_refused(archive, work / "out/dest", "f3", "cap of 3 members", max_members=3)


def test_newline_in_member_name_stays_one_line(work: Path) -> None:
    archive = make_tar(work / "in/nl.tar.gz", [tar_entry("../evil\nname", b"x")])
    assert_refused(archive, work / "out/dest", "../evil\\nname", "outside")


def test_refusal_leaves_existing_dest_untouched(work: Path) -> None:
    dest = work / "out/dest"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"mine")
    archive = make_tar(work / "in/r.tar.gz", [tar_entry("new.txt", b"new"), tar_entry("/etc/x", b"pwn")])
    assert_refused(archive, dest, "/etc/x")
    assert snapshot(dest) == {"keep.txt": b"mine"}


def test_existing_entry_is_never_overwritten(work: Path) -> None:
    dest = work / "out/dest"
    (dest / "results").mkdir(parents=True)
    (dest / "results/a.txt").write_bytes(b"mine")
    archive = make_tar(work / "in/r.tar.gz", [tar_entry("results/a.txt", b"theirs")])
    assert_refused(archive, dest, "results/a.txt", "already exists in the destination")


def test_corrupt_archive_refused(work: Path) -> None:
    good = make_tar(work / "in/good.tar.gz", [tar_entry("a.txt", os.urandom(100_000))])
    bad = work / "in/bad.tar.gz"
    bad.write_bytes(good.read_bytes()[:50_000])  # cut mid-member
    with pytest.raises(UnsafeArchiveError, match=r"bad.tar.gz: member 'a.txt' is corrupt"):
        extract_archive(bad, work / "out/dest")
    assert not (work / "out/dest").exists()


def test_missing_archive_is_a_source_error(work: Path) -> None:
    with pytest.raises(SourceError, match="no such archive"):
        extract_archive(work / "in/nope.tar.gz", work / "out/dest")
    assert not (work / "out/dest").exists()


def test_failed_merge_is_rolled_back(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If moving the second top-level entry fails, the first is taken back out of dest."""
    import jupyter_publish.extract as ex

    dest = work / "out/dest"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"mine")
    archive = make_tar(work / "in/r.tar", [tar_entry("a/x", b"1"), tar_entry("b/y", b"2")], mode="w")
    real_move = ex._move

    def flaky(src: Path, dst: Path) -> None:
        if dst.name == "b":
            raise OSError("disk full")
        real_move(src, dst)

    monkeypatch.setattr(ex, "_move", flaky)
    with pytest.raises(OSError, match="disk full"):
        extract_archive(archive, dest)
    assert snapshot(dest) == {"keep.txt": b"mine"}
    assert sorted(p.name for p in (work / "out").iterdir()) == ["dest"]


# --------------------------------------------------------------------------- zip: hostile


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.txt", "outside the destination"),
        ("ok/../../evil.txt", "outside the destination"),
        ("/abs/evil.txt", "absolute path"),
        ("C:/Windows/evil.txt", "drive letter"),
        ("..\\evil.txt", "backslash"),
    ],
)
def test_zip_bad_names_refused(work: Path, name: str, why: str) -> None:
    archive = make_zip(work / "in/bad.zip", [("fine.txt", b"fine"), (name, b"pwn")])
    assert_refused(archive, work / "out/dest", name, why)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside"])
def test_zip_symlink_escape_refused(work: Path, target: str) -> None:
    archive = make_zip(work / "in/link.zip", [zip_symlink("link", target), ("link/pwned", b"x")])
    assert_refused(archive, work / "out/dest", "link", "symlink")


def test_zip_device_refused(work: Path) -> None:
    info = zipfile.ZipInfo("dev")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o600) << 16
    archive = make_zip(work / "in/dev.zip", [(info, b"")])
    assert_refused(archive, work / "out/dest", "dev", "device file")


def _lie_about_size(path: Path, member: str, fake_size: int) -> None:
    """Rewrite the uncompressed size in both the local header and the central directory."""
    data = bytearray(path.read_bytes())
    encoded = member.encode()
    local = data.find(b"PK\x03\x04")
    assert data[local + 30 : local + 30 + len(encoded)] == encoded
    struct.pack_into("<I", data, local + 22, fake_size)
    central = data.find(b"PK\x01\x02")
    assert data[central + 46 : central + 46 + len(encoded)] == encoded
    struct.pack_into("<I", data, central + 24, fake_size)
    path.write_bytes(bytes(data))


def test_zip_bomb_lying_about_size_refused(work: Path) -> None:
    archive = make_zip(work / "in/bomb.zip", [("bomb.bin", b"\0" * (4 * 2**20))])
    _lie_about_size(archive, "bomb.bin", 100)
    assert list_archive(archive)[0].size == 100  # the lie is what the headers say
    assert_refused(archive, work / "out/dest", "bomb.bin", max_member_bytes=1000)


def test_zip_member_above_cap_refused(work: Path) -> None:
    archive = make_zip(work / "in/big.zip", [("big.bin", b"\0" * 5000)])
    assert_refused(archive, work / "out/dest", "big.bin", "per-member cap", max_member_bytes=1000)


def test_zip_total_cap_refused(work: Path) -> None:
    archive = make_zip(work / "in/total.zip", [(f"p{i}.bin", b"\0" * 400) for i in range(3)])
    assert_refused(archive, work / "out/dest", "p2.bin", "total", max_total_bytes=1000)


def test_stream_larger_than_declared_is_stopped() -> None:
    """Whatever a decompressor does, bytes beyond the declared size are never written."""
    reader = _CappedReader(io.BytesIO(b"\0" * 10_000), "bomb", allowed=10**9, declared=100, why="cap")
    with pytest.raises(_Refused, match="declared 100 bytes"):
        while reader.read(1024):
            pass
    reader = _CappedReader(io.BytesIO(b"\0" * 10_000), "big", allowed=5000, declared=10_000, why="over cap")
    with pytest.raises(_Refused, match="over cap"):
        while reader.read(1024):
            pass


# --------------------------------------------------------------------------- benign


def test_benign_tar_gz_extracts_exactly(work: Path) -> None:
    files = {
        "results/outputs/data.csv": b"a,b\n1,2\n",
        "results/outputs/deep/er/x.bin": bytes(range(256)) * 40,
        "results/stdout": b"hello\n",
        "results/stderr": b"",
    }
    entries = [
        tar_entry("./", None, type_=tarfile.DIRTYPE),
        tar_entry("./results", None, type_=tarfile.DIRTYPE),
    ]
    entries += [tar_entry(f"./{name}", data) for name, data in files.items()]
    entries += [
        tar_entry("./results/run.sh", b"#!/bin/sh\necho hi\n", mode=0o755),
        tar_entry("./results/latest.csv", None, type_=tarfile.SYMTYPE, link="outputs/data.csv"),
        tar_entry("./results/copy.csv", None, type_=tarfile.LNKTYPE, link="results/outputs/data.csv"),
        tar_entry("./results/empty", None, type_=tarfile.DIRTYPE),
    ]
    archive = make_tar(work / "in/results.tar.gz", entries)
    dest = work / "out/dest"
    written = extract_archive(archive, dest)

    for name, data in files.items():
        assert (dest / name).read_bytes() == data
    assert os.readlink(dest / "results/latest.csv") == "outputs/data.csv"
    assert (dest / "results/latest.csv").read_bytes() == files["results/outputs/data.csv"]
    assert (dest / "results/copy.csv").read_bytes() == files["results/outputs/data.csv"]
    assert os.stat(dest / "results/run.sh").st_mode & stat.S_IXUSR
    assert (dest / "results/empty").is_dir()
    assert int(os.stat(dest / "results/stdout").st_mtime) == 1_700_000_000
    expected = {*files, "results/run.sh", "results/latest.csv", "results/copy.csv"}
    assert {p.relative_to(dest).as_posix() for p in written} == expected
    assert not [p for p in (work / "out").iterdir() if p.name != "dest"]


def test_benign_zip_extracts_exactly(work: Path) -> None:
    files = {"a/b/c.txt": b"c" * 1000, "a/d.json": b'{"x": 1}', "top.txt": b"top"}
    archive = make_zip(work / "in/results.zip", [("a/", b""), ("a/b/", b""), *files.items()])
    dest = work / "out/dest"
    written = extract_archive(archive, dest)
    assert snapshot(dest) == {"a": None, "a/b": None, **files}
    assert sorted(p.relative_to(dest).as_posix() for p in written) == sorted(files)


def test_zip_symlink_inside_tree_is_kept(work: Path) -> None:
    archive = make_zip(work / "in/l.zip", [("data/x.txt", b"x"), zip_symlink("latest", "data/x.txt")])
    dest = work / "out/dest"
    extract_archive(archive, dest)
    assert os.readlink(dest / "latest") == "data/x.txt"
    assert (dest / "latest").read_bytes() == b"x"


def test_extract_into_existing_directory_adds_entries(work: Path) -> None:
    dest = work / "out/dest"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"mine")
    archive = make_tar(work / "in/r.tar", [tar_entry("new/a.txt", b"a")], mode="w")
    assert extract_archive(archive, dest) == [dest / "new/a.txt"]
    assert snapshot(dest) == {"keep.txt": b"mine", "new": None, "new/a.txt": b"a"}


def test_caps_allow_archives_within_them(work: Path) -> None:
    archive = make_zip(work / "in/ok.zip", [(f"p{i}.bin", b"\0" * 400) for i in range(2)])
    extract_archive(archive, work / "out/dest", max_total_bytes=800, max_member_bytes=400, max_members=2)
    assert len(list((work / "out/dest").iterdir())) == 2


# --------------------------------------------------------------------------- detection and listing


def test_is_archive_by_name_and_content(work: Path) -> None:
    tar_no_suffix = make_tar(work / "in/download", [tar_entry("a.txt", b"a")])
    assert is_archive(tar_no_suffix)
    assert (
        is_archive(work / "in/x.tar.gz") and is_archive(work / "in/x.TGZ") and is_archive(work / "in/x.zip")
    )
    csv_gz = work / "in/table.csv.gz"
    import gzip

    csv_gz.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert not is_archive(csv_gz)
    xlsx = make_zip(work / "in/book.xlsx", [("xl/workbook.xml", b"<x/>")])
    assert not is_archive(xlsx)  # a zip container document, not a result archive
    text = work / "in/notes"
    text.write_text("hello")
    assert not is_archive(text)


def test_list_archive(work: Path) -> None:
    archive = make_tar(
        work / "in/l.tar.gz",
        [
            tar_entry("d", None, type_=tarfile.DIRTYPE),
            tar_entry("d/f.txt", b"12345"),
            tar_entry("d/l", None, type_=tarfile.SYMTYPE, link="f.txt"),
        ],
    )
    assert list_archive(archive) == [
        ArchiveMember("d", 0, True, "dir"),
        ArchiveMember("d/f.txt", 5, False, "file"),
        ArchiveMember("d/l", 0, False, "symlink"),
    ]
    assert len(list_archive(archive, limit=2)) == 2
    z = make_zip(work / "in/z.zip", [("a/", b""), ("a/b.txt", b"bb")])
    assert list_archive(z) == [
        ArchiveMember("a/", 0, True, "dir"),
        ArchiveMember("a/b.txt", 2, False, "file"),
    ]


# --------------------------------------------------------------------------- zstd, gzip members, digests


def _zstd():
    return pytest.importorskip("compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd")


def _streamed(root: Path, compression: str, path: Path) -> Path:
    """An archive as the parallel ArchiveStream writes it (several gzip members / zstd frames)."""
    from jupyter_publish.archive import ArchiveStream
    from jupyter_publish.bundle import collect

    with ArchiveStream(collect(root), compression=compression, threads=2) as stream:
        path.write_bytes(stream.read())
    return path


@pytest.fixture
def published(work: Path) -> Path:
    root = work / "src"
    (root / "sub").mkdir(parents=True)
    (root / "sub/big.bin").write_bytes(os.urandom(2_500_000))  # three 1 MiB blocks
    (root / "a.csv").write_bytes(b"x,y\n" * 5000)
    (root / "empty.txt").write_bytes(b"")
    (root / "hollow").mkdir()
    return root


@pytest.mark.parametrize(
    ("compression", "suffix"), [("zstd", ".tar.zst"), ("gzip", ".tar.gz"), ("none", ".tar")]
)
def test_streamed_archives_extract_with_digests(
    work: Path, published: Path, compression: str, suffix: str
) -> None:
    import hashlib

    from jupyter_publish.cid import cid_of

    if compression == "zstd":
        _zstd()
    archive = _streamed(published, compression, work / f"in/r{suffix}")
    if compression == "gzip":
        assert archive.read_bytes().count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00") >= 3  # members
    assert is_archive(archive)
    dest = work / "out/dest"
    digests: dict = {}
    written = extract_archive(archive, dest, digests=digests, cid_version=1)
    expected = {p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file()}
    assert {p.relative_to(dest).as_posix() for p in written} == expected == set(digests)
    assert (dest / "hollow").is_dir()
    for rel, digest in digests.items():
        data = (published / rel).read_bytes()
        assert (dest / rel).read_bytes() == data
        assert (digest.size, digest.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert digest.cid == cid_of(published / rel, 1)


def test_tar_zst_by_suffix_and_by_magic(work: Path, published: Path) -> None:
    zstd = _zstd()
    archive = _streamed(published, "zstd", work / "in/r.tar.zst")
    assert is_archive(archive) and is_archive(work / "in/x.tzst")  # by name alone
    download = work / "in/download"
    download.write_bytes(archive.read_bytes())
    assert is_archive(download)  # by its magic bytes and a ustar header inside
    not_tar = work / "in/table"
    not_tar.write_bytes(zstd.compress(b"a,b\n1,2\n" * 100))
    assert not is_archive(not_tar)
    names = [m.name for m in list_archive(download)]
    assert "sub/big.bin" in names and "hollow" in names
    extract_archive(download, work / "out/dest")
    assert (work / "out/dest/a.csv").read_bytes() == b"x,y\n" * 5000


def test_hostile_tar_zst_is_refused_like_any_tar(work: Path) -> None:
    zstd = _zstd()
    plain = make_tar(work / "in/evil.tar", [tar_entry("ok.txt", b"fine"), tar_entry("../x", b"pwn")], "w")
    archive = work / "in/evil.tar.zst"
    archive.write_bytes(zstd.compress(plain.read_bytes()))
    assert_refused(archive, work / "out/dest", "../x", "outside the destination")
    bomb = work / "in/bomb.tar.zst"
    big = make_tar(work / "in/big.tar", [tar_entry("big.bin", b"\0" * 50_000)], "w")
    bomb.write_bytes(zstd.compress(big.read_bytes()))
    assert_refused(bomb, work / "out/dest", "big.bin", "per-member cap", max_member_bytes=1000)


def test_corrupt_tar_zst_is_refused(work: Path) -> None:
    zstd = _zstd()
    plain = make_tar(work / "in/a.tar", [tar_entry("a.bin", os.urandom(200_000))], "w")
    checked = {zstd.CompressionParameter.checksum_flag: 1}  # as zstd(1) and ArchiveStream write
    data = bytearray(zstd.compress(plain.read_bytes(), options=checked))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    archive = work / "in/bad.tar.zst"
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, work / "out/dest")
    assert "\n" not in str(info.value) and "nothing extracted" in str(info.value)
    assert not (work / "out/dest").exists()
    truncated = work / "in/cut.tar.zst"
    truncated.write_bytes(bytes(zstd.compress(plain.read_bytes())[:50_000]))
    with pytest.raises(UnsafeArchiveError, match=r"'a\.bin' is corrupt"):
        extract_archive(truncated, work / "out/dest")


def test_digests_of_links_zip_and_sha256_only(work: Path) -> None:
    import hashlib

    data = b"shared bytes\n"
    archive = make_tar(
        work / "in/links.tar",
        [
            tar_entry("d/data.csv", data),
            tar_entry("d/copy.csv", None, type_=tarfile.LNKTYPE, link="d/data.csv"),
            tar_entry("d/latest.csv", None, type_=tarfile.SYMTYPE, link="data.csv"),
            tar_entry("d/dangling", None, type_=tarfile.SYMTYPE, link="nope.csv"),
        ],
        "w",
    )
    digests: dict = {}
    extract_archive(archive, work / "out/dest", digests=digests)
    sha = hashlib.sha256(data).hexdigest()
    assert set(digests) == {"d/data.csv", "d/copy.csv", "d/latest.csv"}
    assert {(d.size, d.sha256, d.cid, d.tsize) for d in digests.values()} == {(len(data), sha, "", 0)}
    z = make_zip(work / "in/z.zip", [("a/b.txt", b"bb"), ("c.txt", b"")])
    zdigests: dict = {}
    extract_archive(z, work / "out/zdest", digests=zdigests, cid_version=0)
    assert zdigests["a/b.txt"].sha256 == hashlib.sha256(b"bb").hexdigest()
    assert zdigests["c.txt"].cid == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"  # ipfs add of ""


def test_a_replaced_member_keeps_only_its_last_digest(work: Path) -> None:
    archive = make_tar(
        work / "in/r.tar",
        [
            tar_entry("x", b"first"),
            tar_entry("x", None, type_=tarfile.SYMTYPE, link="y"),
            tar_entry("y", b"2"),
            tar_entry("z", b"gone"),
            tar_entry("z", None, type_=tarfile.SYMTYPE, link="missing"),
        ],
        "w",
    )
    digests: dict = {}
    extract_archive(archive, work / "out/dest", digests=digests)
    assert os.readlink(work / "out/dest/x") == "y"
    assert digests["x"] == digests["y"] and digests["y"].size == 1
    assert "z" not in digests  # a dangling link now: the bytes it replaced are gone


def test_digests_stay_empty_when_refused(work: Path) -> None:
    archive = make_tar(work / "in/r.tar.gz", [tar_entry("ok.txt", b"fine"), tar_entry("/etc/x", b"pwn")])
    digests: dict = {}
    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, work / "out/dest", digests=digests, cid_version=0)
    assert digests == {}


def test_tar_zst_without_zstd_installed_says_what_to_install(work: Path, published: Path) -> None:
    import subprocess

    _zstd()
    archive = _streamed(published, "zstd", work / "in/r.tar.zst")
    code = (
        "import sys\n"
        "sys.modules['backports.zstd'] = sys.modules['compression.zstd'] = None\n"
        "from jupyter_publish.extract import extract_archive\n"
        "from jupyter_publish.errors import PublishError\n"
        "try:\n"
        f"    extract_archive({str(archive)!r}, {str(work / 'out/dest')!r})\n"
        "except PublishError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PublishError compression='zstd' needs: pip install 'jupyter-publish[zstd]'"
    assert sorted(p.name for p in (work / "out").iterdir()) == []  # no temporary folder left
