"""``local://JOB/PATH`` reaches files inside an archive publish (issue 13 item 3), as
``ARCHIVE#PATH`` addresses them in the ledger; each is verified by its recorded sha256."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.backends.local import LocalBackend
from jupyter_publish.errors import NotFoundError


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    (root / "tables" / "deep").mkdir(parents=True)
    (root / "tables" / "a.csv").write_text("x,y\n1,2\n")
    (root / "tables" / "deep" / "b.csv").write_text("z\n3\n")
    (root / "log.txt").write_bytes(os.urandom(300_000))
    return root


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_one_file_inside_an_archive_publish(results: Path, tmp_path: Path, compression: str) -> None:
    if compression == "zstd":
        pytest.importorskip("backports.zstd" if not _has_std_zstd() else "compression.zstd")
    result = jp.publish(results, "local", compression=compression)
    assert result.archive is not None
    fetched = jp.fetch(f"local://{result.job_id}/tables/a.csv", tmp_path / "one")
    assert fetched.verified and [f.verified_against for f in fetched.files] == ["sha256"]
    assert (tmp_path / "one" / "a.csv").read_text() == "x,y\n1,2\n"


def _has_std_zstd() -> bool:
    try:
        import compression.zstd  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_folder_inside_an_archive_publish(results: Path, tmp_path: Path) -> None:
    result = jp.publish(results, "local")
    fetched = jp.fetch(f"local://{result.job_id}/tables", tmp_path / "folder")
    assert fetched.verified and len(fetched.files) == 2
    assert (tmp_path / "folder" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (tmp_path / "folder" / "deep" / "b.csv").read_text() == "z\n3\n"


def test_the_archive_hash_member_form(results: Path, tmp_path: Path) -> None:
    result = jp.publish(results, "local")
    assert result.archive is not None
    ref = f"local://{result.job_id}/{result.archive.path}#log.txt"
    fetched = jp.fetch(ref, tmp_path / "hash")
    assert fetched.verified
    assert (tmp_path / "hash" / "log.txt").read_bytes() == (results / "log.txt").read_bytes()


def test_the_whole_job_is_still_the_archive(results: Path, tmp_path: Path) -> None:
    result = jp.publish(results, "local")
    fetched = jp.fetch(f"local://{result.job_id}/", tmp_path / "all")
    assert fetched.verified and fetched.extracted_from is not None
    assert (tmp_path / "all" / "tables" / "deep" / "b.csv").exists()


def test_a_member_read_from_an_offset(results: Path) -> None:
    result = jp.publish(results, "local")
    assert result.archive is not None
    store = LocalBackend()
    (obj,) = store.list(f"local://{result.job_id}/log.txt")
    assert obj.location.endswith(f"{result.archive.path}#log.txt") and obj.size == 300_000
    data = (results / "log.txt").read_bytes()
    assert b"".join(store.read(obj.location, offset=70_000)) == data[70_000:]
    assert b"".join(store.read(obj.location, offset=5, length=10)) == data[5:15]


def test_a_missing_member_is_not_found(results: Path, tmp_path: Path) -> None:
    result = jp.publish(results, "local")
    with pytest.raises(NotFoundError):
        jp.fetch(f"local://{result.job_id}/tables/zzz.csv", tmp_path / "none")


def test_a_plain_publish_holding_a_tarball_is_not_searched(results: Path, tmp_path: Path) -> None:
    """Only an archive publish's one archive is looked inside by plain path."""
    with tarfile.open(results / "mine.tar.gz", "w:gz") as tar:
        tar.add(results / "tables" / "a.csv", arcname="inner.csv")
    result = jp.publish(results, "local", archive=False)
    with pytest.raises(NotFoundError):
        LocalBackend().list(f"local://{result.job_id}/inner.csv")
    (obj,) = LocalBackend().list(f"local://{result.job_id}/mine.tar.gz#inner.csv")  # asked for by name
    assert obj.name == "inner.csv"
