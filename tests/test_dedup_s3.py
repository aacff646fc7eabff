"""Send only new bytes: publishing what a bucket already holds copies it server-side.

Against a real SeaweedFS (``weed mini``): the second publish of the same bytes sends none
of them (``sent_bytes``), copies them (``copied_bytes``), and the copy fetches back
verified; anything that is not provably the same is uploaded as before.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from trees import random_file

import jupyter_publish as jp
from jupyter_publish.backends import s3 as s3_backend
from jupyter_publish.cid import cid_of
from jupyter_publish.ledger import Ledger
from jupyter_publish.testing.seaweed import SeaweedS3

MiB = 1024 * 1024
BIG = 20 * MiB  # above one part (8 MiB): a multipart upload, a composite checksum


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    random_file(root / "weights.bin", BIG, b"dedup")
    (root / "table.csv").write_text("step,loss\n1,0.5\n2,0.25\n")
    return root


def _fetched_ok(job_id, dest, source) -> None:
    back = jp.fetch(job_id, dest)
    assert back.verified
    for name in ("weights.bin", "table.csv"):
        assert _sha256(dest / name) == _sha256(source / name)


def test_plain_publish_twice_copies_the_large_file(s3_env, s3_bucket, results, tmp_path):
    first = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/", archive=False)
    small = (results / "table.csv").stat().st_size
    assert first.sent_bytes == BIG + small and first.copied_bytes == 0
    second = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/", archive=False)
    assert second.copied_bytes == BIG
    assert second.sent_bytes == small  # the small file is sent: a PUT costs less than HEAD + copy
    # The copy's record is as complete as an upload's: the same sha256 and CID.
    by_path = {f.path: f for f in second.files}
    assert by_path["weights.bin"].sha256 == _sha256(results / "weights.bin")
    assert by_path["weights.bin"].cid == cid_of(results / "weights.bin")
    key = f"runs/{second.job_id}/weights.bin"
    head = s3_env.client().head_object(Bucket=s3_bucket, Key=key)
    assert head["ContentLength"] == BIG
    assert head["Metadata"]["sha256"] == by_path["weights.bin"].sha256
    assert "copied 20.0 MiB" in str(second) and "Transfer" in second._repr_html_()
    _fetched_ok(second.job_id, tmp_path / "back", results)
    # The ledger keeps the counts.
    recorded = Ledger().result(second.job_id)
    assert (recorded.sent_bytes, recorded.copied_bytes) == (small, BIG)
    # A copy is a candidate too: a third publish copies the second's object (by its metadata).
    s3_env.client().delete_object(Bucket=s3_bucket, Key=f"runs/{first.job_id}/weights.bin")
    third = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/", archive=False)
    assert third.copied_bytes == BIG
    _fetched_ok(third.job_id, tmp_path / "back3", results)


def test_archive_publish_twice_copies_the_archive(s3_env, s3_bucket, results, tmp_path):
    first = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/")
    assert first.archive is not None and first.sent_bytes == first.archive.size
    os.utime(results / "weights.bin")  # a notebook run again rewrites its outputs: new mtimes
    second = jp.publish(results, f"s3://{s3_bucket}/runs/{{jobID}}/")
    assert second.archive is not None
    assert second.sent_bytes == 0 and second.copied_bytes == first.archive.size
    assert second.archive.sha256 == first.archive.sha256
    assert second.archive.location != first.archive.location
    assert {f.path: f.sha256 for f in second.files} == {f.path: f.sha256 for f in first.files}
    assert second.root_cid == first.root_cid
    _fetched_ok(second.job_id, tmp_path / "back", results)


@pytest.mark.parametrize("archive", [True, False])
def test_changed_bytes_of_the_same_size_are_uploaded(s3_env, s3_bucket, results, archive):
    jp.publish(results, f"s3://{s3_bucket}/a/{{jobID}}/", archive=archive)
    random_file(results / "weights.bin", BIG, seed=b"other")
    second = jp.publish(results, f"s3://{s3_bucket}/a/{{jobID}}/", archive=archive)
    assert second.copied_bytes == 0
    assert second.sent_bytes >= BIG
    by_path = {f.path: f for f in second.files}
    assert by_path["weights.bin"].sha256 == _sha256(results / "weights.bin")


def test_another_bucket_is_uploaded(s3_env, s3_server, s3_bucket, results):
    other = s3_server.create_bucket(f"{s3_bucket}-b")
    jp.publish(results, f"s3://{s3_bucket}/x/{{jobID}}/", archive=False)
    second = jp.publish(results, f"s3://{other}/x/{{jobID}}/", archive=False)
    assert second.copied_bytes == 0 and second.sent_bytes > BIG


def test_another_endpoint_is_uploaded(s3_env, s3_bucket, results):
    """The same bucket name at another endpoint is another bucket (the ledger says where)."""
    jp.publish(results, f"s3://{s3_bucket}/x/{{jobID}}/", archive=False)
    with Ledger()._connect() as db:  # as if it went to another server of the same bucket name
        for job_id, text in db.execute("SELECT job_id, result_json FROM jobs").fetchall():
            doc = json.loads(text)
            doc["Params"]["Endpoint"] = "http://127.0.0.1:1"
            db.execute("UPDATE jobs SET result_json=? WHERE job_id=?", (json.dumps(doc), job_id))
    second = jp.publish(results, f"s3://{s3_bucket}/x/{{jobID}}/", archive=False)
    assert second.copied_bytes == 0


@pytest.mark.parametrize("archive", [True, False])
def test_a_deleted_candidate_falls_back_to_the_upload(s3_env, s3_bucket, results, tmp_path, archive):
    first = jp.publish(results, f"s3://{s3_bucket}/d/{{jobID}}/", archive=archive)
    client = s3_env.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="d/"):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=s3_bucket, Key=item["Key"])
    second = jp.publish(results, f"s3://{s3_bucket}/d/{{jobID}}/", archive=archive)
    assert second.copied_bytes == 0 and second.sent_bytes == first.sent_bytes
    _fetched_ok(second.job_id, tmp_path / "back", results)


def test_a_candidate_overwritten_with_other_bytes_falls_back(s3_env, s3_bucket, results, tmp_path):
    first = jp.publish(results, f"s3://{s3_bucket}/o/{{jobID}}/", archive=False)
    other = random_file(tmp_path / "other.bin", BIG, seed=b"intruder")
    s3_env.client().upload_file(str(other), s3_bucket, f"o/{first.job_id}/weights.bin")
    second = jp.publish(results, f"s3://{s3_bucket}/o/{{jobID}}/", archive=False)
    assert second.copied_bytes == 0
    _fetched_ok(second.job_id, tmp_path / "back", results)


def test_the_same_key_again_is_not_copied_onto_itself(s3_env, s3_bucket, results, tmp_path):
    jp.publish(results, f"s3://{s3_bucket}/fixed/", archive=False)
    second = jp.publish(results, f"s3://{s3_bucket}/fixed/", archive=False)
    assert second.copied_bytes == BIG  # already stored there: nothing sent, nothing copied
    _fetched_ok(second.job_id, tmp_path / "back", results)


def test_versioned_bucket_copies_the_recorded_version(s3_env, s3_versioned_bucket, results, tmp_path):
    first = jp.publish(results, f"s3://{s3_versioned_bucket}/v/{{jobID}}/", archive=False)
    second = jp.publish(results, f"s3://{s3_versioned_bucket}/v/{{jobID}}/", archive=False)
    assert second.copied_bytes == BIG
    (record,) = [f for f in second.files if f.path == "weights.bin"]
    assert record.location and "?versionId=" in record.location
    assert record.location != next(f.location for f in first.files if f.path == "weights.bin")
    _fetched_ok(second.job_id, tmp_path / "back", results)


def test_a_large_object_is_copied_in_parts(s3_env, s3_bucket, results, tmp_path, monkeypatch):
    """Above 5 GiB a copy goes in parts (UploadPartCopy): here above 8 MiB, same path."""
    monkeypatch.setattr(s3_backend, "COPY_MAX", 8 * MiB)
    monkeypatch.setattr(s3_backend, "COPY_PART", 5 * MiB)
    jp.publish(results, f"s3://{s3_bucket}/p/{{jobID}}/", archive=False)
    second = jp.publish(results, f"s3://{s3_bucket}/p/{{jobID}}/", archive=False)
    assert second.copied_bytes == BIG
    head = s3_env.client().head_object(Bucket=s3_bucket, Key=f"p/{second.job_id}/weights.bin")
    assert head["ETag"].strip('"').endswith("-4")  # copied in four 5 MiB parts
    assert head["Metadata"]["sha256"] == _sha256(results / "weights.bin")
    _fetched_ok(second.job_id, tmp_path / "back", results)


def test_a_refused_copy_falls_back_to_the_upload(s3_env, s3_bucket, results, tmp_path, monkeypatch):
    """Fault injection on the real server's client: CopyObject answers AccessDenied
    (a policy allowing GetObject but not the copy), HEAD works."""
    from botocore.exceptions import ClientError

    make = s3_backend.S3Backend._make_client

    def refusing(self):
        client = make(self)

        def deny(**_):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CopyObject")

        client.meta.events.register("before-call.s3.CopyObject", deny)
        return client

    first = jp.publish(results, f"s3://{s3_bucket}/r/{{jobID}}/", archive=False)
    monkeypatch.setattr(s3_backend.S3Backend, "_make_client", refusing)
    second = jp.publish(results, f"s3://{s3_bucket}/r/{{jobID}}/", archive=False)
    assert second.copied_bytes == 0 and second.sent_bytes == first.sent_bytes
    _fetched_ok(second.job_id, tmp_path / "back", results)


# -- a PutObject-only identity -----------------------------------------------------------------


class _WithWriter(SeaweedS3):
    """SeaweedFS with a second identity allowed only ``Write`` (no Read: no HEAD, no copy source)."""

    def _write_config(self) -> None:
        super()._write_config()
        config = json.loads(self.config_path.read_text())
        self.writer_key = "WR" + os.urandom(8).hex().upper()
        self.writer_secret = os.urandom(20).hex()
        writer = {"accessKey": self.writer_key, "secretKey": self.writer_secret}
        config["identities"].insert(1, {"name": "writer", "credentials": [writer], "actions": ["Write"]})
        self.config_path.write_text(json.dumps(config))


@pytest.fixture(scope="module")
def writer_server(tmp_path_factory):
    server = _WithWriter(tmp_path_factory.mktemp("weed-writer"))
    with server.serving():
        yield server


@pytest.mark.servers
@pytest.mark.parametrize("archive", [True, False])
def test_a_write_only_identity_uploads_instead(writer_server, results, tmp_path, monkeypatch, archive):
    for name, value in writer_server.credentials_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    bucket = writer_server.create_bucket(f"jp-writer-{os.urandom(6).hex()}")
    first = jp.publish(results, f"s3://{bucket}/w/{{jobID}}/", archive=archive)
    second = jp.publish(
        results,
        f"s3://{bucket}/w/{{jobID}}/",
        archive=archive,
        aws_access_key_id=writer_server.writer_key,
        aws_secret_access_key=writer_server.writer_secret,
    )
    assert second.copied_bytes == 0 and second.sent_bytes == first.sent_bytes
    _fetched_ok(second.job_id, tmp_path / "back", results)  # read back with the admin keys
