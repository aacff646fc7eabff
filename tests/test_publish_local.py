"""Publish to and fetch from the embedded local store; the ledger and its DataFrames."""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import pandas as pd
import pytest

import jupyter_publish as jp
from jupyter_publish.backends.local import LocalBackend
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import DestinationError, IntegrityError, NotFoundError, SourceError
from jupyter_publish.ledger import Ledger


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "logs").mkdir(parents=True)
    (root / "metrics.json").write_text('{"loss": 0.1}')
    (root / "logs" / "stdout").write_text("epoch 1\nepoch 2\n")
    return root


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("archive", [True, False])
def test_publish_records_sha256_and_cid_of_every_file(results, archive):
    result = jp.publish(results, archive=archive)
    files = {f.path: f for f in result.files if f.kind == "file"}
    assert set(files) == {"metrics.json", "logs/stdout"}
    for name, record in files.items():
        assert record.sha256 == sha256(results / name)
        assert record.cid == cid_of(results / name)
    assert result.root_cid == cid_of(results)
    assert (result.archive is not None) is archive
    assert result.job_id.startswith("j-") and result.execution_id.startswith("e-")


def test_same_content_is_stored_once(results, isolated_home):
    jp.publish(results, archive=False)
    jp.publish(results, archive=False)
    blobs = [p for p in (isolated_home / "store" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 2


def test_jobs_and_cids_frames_have_sensible_dtypes(results):
    first = jp.publish(results)
    second = jp.publish(results, archive=False, name="again")
    jobs = jp.jobs()
    assert list(jobs["job_id"]) == [second.job_id, first.job_id]  # newest first
    assert str(jobs["n_files"].dtype) == "Int64"
    assert isinstance(jobs["status"].dtype, pd.CategoricalDtype)
    assert str(jobs["created_at"].dtype).startswith("datetime64")
    cids = jp.cids(first.job_id)
    assert set(cids["kind"]) == {"file", "dir", "archive"}
    row = cids[cids["path"] == "metrics.json"].iloc[0]
    assert row["cid"] == cid_of(results / "metrics.json")
    assert row["sha256"] == sha256(results / "metrics.json")
    assert len(jp.cids()) == len(cids) + len(jp.cids(second.job_id))


def test_failures_after_the_job_started_are_recorded(tmp_path):
    with pytest.raises(SourceError):
        jp.publish(tmp_path / "missing")
    (row,) = Ledger().jobs()
    assert row["status"] == "failed"
    assert "no such file" in row["error"]


def test_bad_destination_records_nothing(results):
    with pytest.raises(DestinationError):
        jp.publish(results, "s3://b1/{nope}/")
    with pytest.raises(DestinationError, match="does not apply to local"):
        jp.publish(results, "local", endpoint="http://x")
    assert Ledger().jobs() == []


@pytest.mark.parametrize("archive", [True, False])
def test_fetch_by_job_id_round_trips_byte_identical(results, tmp_path, archive):
    result = jp.publish(results, archive=archive)
    fetched = jp.fetch(result.job_id, tmp_path / "back")
    assert fetched.verified
    for name in ("metrics.json", "logs/stdout"):
        assert (tmp_path / "back" / name).read_bytes() == (results / name).read_bytes()
    assert not list(tmp_path.glob(".back.jp-partial*"))


def test_fetch_by_uri_and_result_object(results, tmp_path):
    result = jp.publish(results, archive=False)
    by_uri = jp.fetch(f"local://{result.job_id}/logs/stdout", tmp_path / "one")
    assert [p.name for p in by_uri.paths] == ["stdout"]
    assert by_uri.verified
    by_obj = jp.fetch(result, tmp_path / "two")
    assert sorted(p.name for p in by_obj.paths) == ["metrics.json", "stdout"]


def test_tampered_blob_fails_and_leaves_destination_untouched(results, tmp_path):
    result = jp.publish(results, archive=False)
    record = next(f for f in result.files if f.path == "metrics.json")
    blob = LocalBackend().blob_path(record.sha256)
    blob.chmod(0o644)
    blob.write_text('{"loss": 9.9}')  # same size, other bytes
    dest = tmp_path / "back"
    with pytest.raises(IntegrityError) as info:
        jp.fetch(result.job_id, dest)
    assert record.sha256 in str(info.value)
    assert not (dest / "metrics.json").exists()


def test_verified_content_already_present_is_not_downloaded_again(results, tmp_path):
    result = jp.publish(results, archive=False)
    dest = tmp_path / "back"
    jp.fetch(result.job_id, dest)
    record = next(f for f in result.files if f.path == "metrics.json")
    LocalBackend().blob_path(record.sha256).unlink()  # the store lost it...
    again = jp.fetch(result.job_id, dest)  # ...but the verified copy is already here
    assert again.verified


def test_unknown_job_id_is_one_line(tmp_path):
    with pytest.raises(NotFoundError, match="no job 'j-nope'"):
        jp.fetch("j-nope", tmp_path)


def test_ledger_is_safe_with_concurrent_writers(results):
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                jp.publish(results, archive=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    jobs = Ledger().jobs()
    assert len(jobs) == 12 and {j["status"] for j in jobs} == {"published"}
    db = sqlite3.connect(Ledger().path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_job_ids_sort_by_creation_time():
    from jupyter_publish.ids import new_job_id, ulid

    assert ulid(1000) < ulid(2000)
    ids = [new_job_id() for _ in range(200)]
    assert len(set(ids)) == 200
