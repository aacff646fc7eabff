"""S3 publishing and fetching against a real SeaweedFS server on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys

import httpx
import pytest

import jupyter_publish as jp
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import CredentialsError, IntegrityError, NotFoundError
from jupyter_publish.ledger import Ledger

MiB = 1024 * 1024


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "plots").mkdir(parents=True)
    (root / "table.csv").write_text("step,loss\n1,0.5\n2,0.25\n")
    (root / "plots" / "fig.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return root


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_publish_to_s3_json_matches_sha256sum(s3_env, s3_bucket, results):
    env = {**os.environ}
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", "publish", str(results),
         "--to", f"s3://{s3_bucket}/runs/{{jobID}}/", "--endpoint", s3_env.endpoint, "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["Type"] == "s3"
    assert doc["Params"]["Bucket"] == s3_bucket
    assert doc["Params"]["Key"] == f"runs/{doc['job_id']}/results.tar.gz"
    assert doc["Params"]["Endpoint"] == s3_env.endpoint
    sums = subprocess.run(
        ["sha256sum", "table.csv", "plots/fig.svg"], cwd=results, capture_output=True, text=True
    )
    expected = {line.split()[1]: line.split()[0] for line in sums.stdout.splitlines()}
    assert {m["path"]: m["sha256"] for m in doc["manifest"] if m["kind"] == "file"} == expected
    # The archive object's bytes are what the result says they are.
    body = s3_env.client().get_object(Bucket=s3_bucket, Key=doc["Params"]["Key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == doc["archive"]["sha256"]
    # S3's own ChecksumSHA256 was sent and kept, and equals ours.
    assert base64.b64decode(doc["Params"]["ChecksumSHA256"]).hex() == doc["archive"]["sha256"]
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", "jobs", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert doc["job_id"] in [j["job_id"] for j in json.loads(listed.stdout)]


def test_plain_publish_uploads_each_file_and_a_manifest(s3_env, s3_bucket, results):
    result = jp.publish(results, f"s3://{s3_bucket}/plain/{{jobID}}", archive=False)
    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket=s3_bucket)["Contents"])
    prefix = f"plain/{result.job_id}/"
    assert keys == [prefix + ".jupyter-publish.json", prefix + "plots/fig.svg", prefix + "table.csv"]
    manifest = json.loads(
        s3_env.client().get_object(Bucket=s3_bucket, Key=prefix + ".jupyter-publish.json")["Body"].read()
    )
    assert {m["path"]: m["sha256"] for m in manifest["manifest"] if m["kind"] == "file"} == {
        "table.csv": sha256(results / "table.csv"),
        "plots/fig.svg": sha256(results / "plots/fig.svg"),
    }
    assert result.root_cid == cid_of(results)


def test_placeholders_resolve_in_the_key(s3_env, s3_bucket, results):
    result = jp.publish(results, f"s3://{s3_bucket}/{{date}}/{{time}}/{{jobID}}-{{executionID}}")
    assert re.fullmatch(
        rf"\d{{8}}/\d{{6}}/{result.job_id}-{result.execution_id}\.tar\.gz", result.params["Key"]
    )


def test_bacalhau_inline_options(s3_env, s3_bucket, results, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    result = jp.publish(results, f"s3://{s3_bucket}/r,opt=endpoint={s3_env.endpoint},opt=region=us-east-1")
    assert result.params["Endpoint"] == s3_env.endpoint
    assert result.params["Key"] == "r.tar.gz"


def test_versioning_records_version_id(s3_env, s3_versioned_bucket, s3_bucket, results):
    first = jp.publish(results, f"s3://{s3_versioned_bucket}/same-key")
    (results / "table.csv").write_text("changed\n")
    second = jp.publish(results, f"s3://{s3_versioned_bucket}/same-key")
    assert first.params["VersionID"] and second.params["VersionID"]
    assert first.params["VersionID"] != second.params["VersionID"]
    unversioned = jp.publish(results, f"s3://{s3_bucket}/k")
    assert "VersionID" not in unversioned.params


def test_multipart_upload_of_a_large_file(s3_env, s3_bucket, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        for i in range(80):
            handle.write(hashlib.sha256(i.to_bytes(8, "big")).digest() * (MiB // 32))
    result = jp.publish(big, f"s3://{s3_bucket}/big/", archive=False)
    (record,) = [f for f in result.files if f.kind == "file"]
    assert record.size == 80 * MiB
    assert record.sha256 == sha256(big)
    assert record.cid == cid_of(big)
    head = s3_env.client().head_object(Bucket=s3_bucket, Key="big/big.bin")
    assert head["ContentLength"] == 80 * MiB
    assert head["ETag"].strip('"').endswith("-10")  # 8 MiB parts
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified and sha256(tmp_path / "back" / "big.bin") == record.sha256


def test_wrong_secret_is_one_line_and_recorded(s3_env, s3_bucket, results, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-" + "x" * 20)
    with pytest.raises(CredentialsError) as info:
        jp.publish(results, f"s3://{s3_bucket}/k")
    message = str(info.value)
    assert "\n" not in message
    assert "secret key is wrong" in message
    assert s3_env.secret_key not in message and "not-the-secret" not in message
    (row,) = Ledger().jobs()
    assert row["status"] == "failed" and row["error"] == message


def test_unknown_access_key(s3_env, s3_bucket, results, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEY000000000")
    with pytest.raises(CredentialsError):
        jp.publish(results, f"s3://{s3_bucket}/k")


def test_missing_bucket(s3_env, results):
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-jp' does not exist"):
        jp.publish(results, "s3://no-such-bucket-jp/k")
    assert Ledger().jobs()[0]["status"] == "failed"


def test_unreachable_endpoint(s3_env, results):
    from jupyter_publish.errors import BackendError
    from jupyter_publish.testing.process import free_port

    with pytest.raises(BackendError, match="cannot reach the S3 endpoint"):
        jp.publish(results, "s3://b1/k", endpoint=f"http://127.0.0.1:{free_port()}")


@pytest.mark.parametrize("archive", [True, False])
def test_round_trip_by_job_id_and_uri(s3_env, s3_bucket, results, tmp_path, archive):
    result = jp.publish(results, f"s3://{s3_bucket}/rt/{{jobID}}/", archive=archive)
    by_job = jp.fetch(result.job_id, tmp_path / "by-job")
    assert by_job.verified
    by_uri = jp.fetch(result.uri, tmp_path / "by-uri")
    assert by_uri.verified
    for dest in ("by-job", "by-uri"):
        for name in ("table.csv", "plots/fig.svg"):
            assert (tmp_path / dest / name).read_bytes() == (results / name).read_bytes()


def test_fetch_glob_like_the_bacalhau_tutorial(s3_env, s3_bucket, tmp_path):
    client = s3_env.client()
    names = ["OR_ABI-L1b-RadC-M3C01_a.nc", "OR_ABI-L1b-RadC-M3C01_b.nc", "OR_ABI-L1b-RadC-M3C02_c.nc"]
    for name in names:
        client.put_object(Bucket=s3_bucket, Key=f"ABI-L1b-RadC/2000/001/12/{name}", Body=name.encode())
    fetched = jp.fetch(f"s3://{s3_bucket}/ABI-L1b-RadC/2000/001/12/OR_ABI-L1b-RadC-M3C01*", tmp_path / "goes")
    assert sorted(p.name for p in fetched.paths) == names[:2]
    assert not fetched.verified  # nobody recorded a checksum for these objects
    assert (tmp_path / "goes" / names[0]).read_text() == names[0]


def test_tampered_object_fails_and_destination_untouched(s3_env, s3_bucket, results, tmp_path):
    result = jp.publish(results, f"s3://{s3_bucket}/t/", archive=False)
    s3_env.client().put_object(Bucket=s3_bucket, Key="t/table.csv", Body=b"step,loss\n1,0.9\n2,0.25\n")
    dest = tmp_path / "dest"
    with pytest.raises(IntegrityError) as info:
        jp.fetch(result.job_id, dest)
    assert sha256(results / "table.csv") in str(info.value)
    assert not dest.exists() or not any(dest.rglob("*"))


def test_tampered_archive_fails(s3_env, s3_bucket, results, tmp_path):
    result = jp.publish(results, f"s3://{s3_bucket}/ta")
    s3_env.client().put_object(Bucket=s3_bucket, Key=result.params["Key"], Body=b"not the archive")
    with pytest.raises(IntegrityError):
        jp.fetch(result.job_id, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_presigned_url_downloads_the_archive(s3_env, s3_bucket, results):
    result = jp.publish(results, f"s3://{s3_bucket}/p", presign="15m")
    assert result.url and "X-Amz-Signature" in result.url
    body = httpx.get(result.url).content
    assert hashlib.sha256(body).hexdigest() == result.archive.sha256
    tampered = result.url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered).status_code == 403
