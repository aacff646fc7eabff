"""A fetched archive is unpacked whatever its kind: every type :mod:`extract` reads.

Before, the fetcher had its own shorter list: a ``.tar.xz`` or ``.tar.bz2`` result came
back packed while the same file in a preview or an extraction was read as an archive.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.extract import ARCHIVE_SUFFIXES
from jupyter_publish.fetcher import default_name

MEMBERS = {"b.txt": b"bee\n", "inner/a.txt": b"a" * 5000}
_TAR_MODES = {
    ".tar": "w",
    ".tar.gz": "w:gz",
    ".tgz": "w:gz",
    ".tar.bz2": "w:bz2",
    ".tbz": "w:bz2",
    ".tbz2": "w:bz2",
    ".tar.xz": "w:xz",
    ".txz": "w:xz",
}


def _make(path: Path, suffix: str) -> Path:
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for name, data in MEMBERS.items():
                out.writestr(name, data)
    elif suffix in (".tar.zst", ".tzst"):
        from jupyter_publish.archive import load_zstd

        raw = io.BytesIO()
        _tar(raw, "w")
        path.write_bytes(load_zstd().compress(raw.getvalue()))
    else:
        with path.open("wb") as out:
            _tar(out, _TAR_MODES[suffix])
    return path


def _tar(out: io.RawIOBase | io.BufferedIOBase, mode: str) -> None:
    with tarfile.open(fileobj=out, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_every_suffix_is_tested() -> None:
    assert set(ARCHIVE_SUFFIXES) == {*_TAR_MODES, ".zip", ".tar.zst", ".tzst"}


@pytest.mark.parametrize("suffix", sorted(ARCHIVE_SUFFIXES))
def test_fetch_unpacks_every_archive_type(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "src"
    source.mkdir()
    _make(source / f"made{suffix}", suffix)
    result = jp.publish(source, archive=False)
    for ref, dest in (
        (result.job_id, tmp_path / "by-job"),
        (f"local://{result.job_id}/made{suffix}", tmp_path / "by-uri"),
    ):
        fetched = jp.fetch(ref, dest)
        assert fetched.verified
        got = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
        assert got == MEMBERS, ref


@pytest.mark.parametrize("suffix", sorted(ARCHIVE_SUFFIXES))
def test_default_name_drops_every_archive_suffix(suffix: str) -> None:
    assert default_name(f"https://host/drop/results{suffix}") == "results"
    assert default_name(f"https://host/drop/RESULTS{suffix.upper()}") == "RESULTS"
