"""A Bacalhau published result is fetched exactly as recorded: the S3 version it names,
checked against its ChecksumSHA256 (base64 or hex); a local result's URL over HTTP."""

from __future__ import annotations

import base64
import hashlib

import pytest

import jupyter_publish as jp
from jupyter_publish.bacalhau import BacalhauDocumentError
from jupyter_publish.errors import IntegrityError

V1, V2 = b"first version\n" * 100, b"second version, longer\n" * 100


@pytest.fixture
def two_versions(s3_env, s3_versioned_bucket):
    """v1 then v2 of the same key, as a re-run Bacalhau job leaves them: v1's VersionID."""
    client = s3_env.client()
    first = client.put_object(Bucket=s3_versioned_bucket, Key="out/result.tar", Body=V1)
    client.put_object(Bucket=s3_versioned_bucket, Key="out/result.tar", Body=V2)
    return s3_versioned_bucket, first["VersionId"]


def _spec(bucket: str, version: str, checksum: str, endpoint: str) -> dict:
    params = {"Bucket": bucket, "Key": "out/result.tar", "Endpoint": endpoint, "Region": "us-east-1"}
    return {"Type": "s3", "Params": {**params, "VersionID": version, "ChecksumSHA256": checksum}}


@pytest.mark.parametrize(
    "encode",
    [lambda d: base64.b64encode(d).decode(), lambda d: d.hex(), lambda d: d.hex().upper()],
    ids=["base64", "hex", "HEX"],
)
def test_the_recorded_version_is_fetched_and_checked(s3_env, two_versions, tmp_path, encode):
    bucket, version = two_versions
    spec = _spec(bucket, version, encode(hashlib.sha256(V1).digest()), s3_env.endpoint)
    got = jp.fetch(spec, tmp_path / "back", extract=False)
    assert (tmp_path / "back" / "result.tar").read_bytes() == V1
    assert [f.verified_against for f in got.files] == ["sha256"]


def test_the_spellings_of_a_cids_from_bacalhau_row_work(s3_env, two_versions, tmp_path):
    bucket, version = two_versions
    row = {"type": "s3", "bucket": bucket, "key": "out/result.tar", "endpoint": s3_env.endpoint}
    row |= {"version_id": version, "checksum_sha256": hashlib.sha256(V1).hexdigest(), "cid": None}
    got = jp.fetch(row, tmp_path / "back", extract=False)
    assert (tmp_path / "back" / "result.tar").read_bytes() == V1
    assert got.files[0].verified_against == "sha256"


def test_a_wrong_checksum_keeps_nothing(s3_env, two_versions, tmp_path):
    bucket, version = two_versions
    wrong = base64.b64encode(hashlib.sha256(V2).digest()).decode()  # the other version's
    with pytest.raises(IntegrityError) as err:
        jp.fetch(_spec(bucket, version, wrong, s3_env.endpoint), tmp_path / "back", extract=False)
    assert "\n" not in str(err.value) and "sha256" in str(err.value)
    assert not (tmp_path / "back").exists() or not any((tmp_path / "back").iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name != "back"] == []  # no staging left


@pytest.mark.parametrize("checksum", ["not-a-checksum", "abc123", base64.b64encode(b"short").decode()])
def test_a_malformed_checksum_is_one_line(s3_env, two_versions, tmp_path, checksum):
    bucket, version = two_versions
    with pytest.raises(BacalhauDocumentError) as err:
        jp.fetch(_spec(bucket, version, checksum, s3_env.endpoint), tmp_path / "back", extract=False)
    assert "\n" not in str(err.value) and "ChecksumSHA256" in str(err.value)
    assert not (tmp_path / "back").exists()


def test_the_checksum_s3_returned_to_bacalhau_verifies(s3_env, s3_versioned_bucket, tmp_path):
    """Bacalhau records S3's own base64 ChecksumSHA256 from the upload's answer."""
    client = s3_env.client()
    where = {"Bucket": s3_versioned_bucket, "Key": "out/result.tar"}
    put = client.put_object(**where, Body=V1, ChecksumAlgorithm="SHA256")
    client.put_object(Bucket=s3_versioned_bucket, Key="out/result.tar", Body=V2)
    spec = _spec(s3_versioned_bucket, put["VersionId"], put["ChecksumSHA256"], s3_env.endpoint)
    got = jp.fetch(spec, tmp_path / "back", extract=False)
    assert (tmp_path / "back" / "result.tar").read_bytes() == V1
    assert got.files[0].sha256 == hashlib.sha256(V1).hexdigest()


def test_a_local_result_is_fetched_from_its_url(nginx_dav, tmp_path):
    (nginx_dav.root / "bacalhau-local").mkdir(parents=True, exist_ok=True)
    (nginx_dav.root / "bacalhau-local" / "stdout").write_bytes(V1)
    spec = {"Type": "local", "Params": {"URL": f"{nginx_dav.base_url}/bacalhau-local/stdout"}}
    got = jp.fetch(spec, tmp_path / "back")
    assert (tmp_path / "back" / "stdout").read_bytes() == V1
    assert got.files[0].size == len(V1)
