"""A round trip gives back exactly the published tree: files, bytes and every folder.

Empty folders (nested ones too) are in the manifest, the archive and the root CID;
a fetch must recreate them, whatever the backend and whether the result is an archive.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from trees import tree as _tree

import jupyter_publish as jp


@pytest.fixture
def with_empty_folders(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "data" / "sub").mkdir(parents=True)
    (src / "data" / "sub" / "table.csv").write_bytes(b"a,b\n1,2\n")
    (src / "notes.txt").write_bytes(b"hello\n")
    (src / "empty").mkdir()
    (src / "nested" / "empty" / "deeper").mkdir(parents=True)
    (src / "data" / "also-empty").mkdir()
    return src


def _destination(request: pytest.FixtureRequest, where: str) -> str:
    if where == "s3":
        request.getfixturevalue("s3_env")
        return f"s3://{request.getfixturevalue('s3_bucket')}/tree/{{jobID}}/"
    if where == "ipfs":
        request.getfixturevalue("ipfs_env")
        return "ipfs://"
    return "local"


@pytest.mark.parametrize("archive", [True, False], ids=["archive", "plain"])
@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.servers)])
def test_round_trip_by_job_id_keeps_empty_folders(request, with_empty_folders, tmp_path, where, archive):
    result = jp.publish(with_empty_folders, _destination(request, where), archive=archive)
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    assert _tree(tmp_path / "back") == _tree(with_empty_folders)
    recreated = {p.relative_to(tmp_path / "back").as_posix() for p in back.dirs}
    assert {"empty", "nested/empty/deeper", "data/also-empty"} <= recreated
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".back.")]


@pytest.mark.parametrize("archive", [True, False], ids=["archive", "plain"])
def test_round_trip_by_s3_uri_keeps_empty_folders(
    s3_env, s3_bucket, with_empty_folders, tmp_path, monkeypatch, archive
):
    """A fetch by URI on a fresh machine: the empty folders come from the store alone."""
    result = jp.publish(with_empty_folders, f"s3://{s3_bucket}/uri/{{jobID}}/", archive=archive)
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "other-home"))  # no ledger record
    back = jp.fetch(result.uri, tmp_path / "back")
    assert back.verified
    assert _tree(tmp_path / "back") == _tree(with_empty_folders)


def test_round_trip_by_local_uri_keeps_empty_folders(with_empty_folders, tmp_path):
    result = jp.publish(with_empty_folders, "local", archive=False)
    back = jp.fetch(result.uri, tmp_path / "back")
    assert back.verified
    assert _tree(tmp_path / "back") == _tree(with_empty_folders)


@pytest.mark.parametrize("archive", [True, False], ids=["archive", "plain"])
def test_round_trip_over_ipfs_keeps_empty_folders(ipfs_env, with_empty_folders, tmp_path, archive):
    result = jp.publish(with_empty_folders, "ipfs://", archive=archive)
    back = jp.fetch(result.job_id, tmp_path / "by-job")
    assert back.verified
    assert _tree(tmp_path / "by-job") == _tree(with_empty_folders)
    if not archive:  # by CID, with no record: the folders come from the DAG itself
        by_cid = jp.fetch(f"ipfs://{result.root_cid}", tmp_path / "by-cid")
        assert by_cid.verified
        assert _tree(tmp_path / "by-cid") == _tree(with_empty_folders)
