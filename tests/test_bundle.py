"""Collecting sources and writing deterministic archives."""

from __future__ import annotations

import hashlib
import os
import tarfile

import pytest
from reference_archive import write_archive

from jupyter_publish.bundle import collect
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import SourceError


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "plots").mkdir(parents=True)
    (root / "table.csv").write_text("a,b\n1,2\n")
    (root / "plots" / "fig.svg").write_text("<svg/>")
    (root / "empty").mkdir()
    return root


def test_one_folder_publishes_its_contents(results):
    bundle = collect(results)
    assert [f.name for f in bundle.files] == ["plots/fig.svg", "table.csv"]
    assert bundle.dirs == ["empty"]
    assert bundle.label == "results"


def test_several_paths_keep_their_names(results, tmp_path):
    extra = tmp_path / "notes.txt"
    extra.write_text("n")
    bundle = collect([results, extra])
    assert [f.name for f in bundle.files] == ["notes.txt", "results/plots/fig.svg", "results/table.csv"]


def test_globs_expand_and_empty_globs_fail(results):
    bundle = collect([str(results / "*.csv")])
    assert [f.name for f in bundle.files] == ["table.csv"]
    with pytest.raises(SourceError, match="no files match"):
        collect([str(results / "*.parquet")])


def test_missing_and_unreadable_sources(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        collect(tmp_path / "nope")
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    secret.chmod(0)
    if os.access(secret, os.R_OK):  # root reads anything
        pytest.skip("running as a user who can read mode-000 files")
    with pytest.raises(SourceError, match="permission denied"):
        collect(secret)


def test_duplicate_names_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_text("1")
    (tmp_path / "b" / "x.txt").write_text("2")
    with pytest.raises(SourceError, match=r"both be published as 'x\.txt'"):
        collect([tmp_path / "a" / "x.txt", tmp_path / "b" / "x.txt"])


def test_archive_is_deterministic_and_hashes_every_file(results, tmp_path):
    bundle = collect(results)
    first = tmp_path / "one.tar.gz"
    digests, archive = write_archive(bundle, first)
    os.utime(results / "table.csv", (1, 1))  # mtimes must not matter
    second = tmp_path / "two.tar.gz"
    _, again = write_archive(collect(results), second)
    assert first.read_bytes() == second.read_bytes()
    assert archive.sha256 == again.sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert digests["table.csv"].sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert digests["table.csv"].cid == cid_of(results / "table.csv")
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["empty", "plots/fig.svg", "table.csv"]
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}
