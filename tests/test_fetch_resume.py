"""Interrupted downloads resume; unverifiable partial data is never kept."""

from __future__ import annotations

import hashlib
import os

import pytest

import jupyter_publish as jp
from jupyter_publish.errors import IntegrityError


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "src" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    return path


def _stage(dest, name: str, data: bytes) -> None:
    part = dest.parent / f".{dest.name}.jp-partial" / "objects" / name
    part.parent.mkdir(parents=True)
    part.write_bytes(data)


def _destination(request: pytest.FixtureRequest, where: str) -> str:
    if where == "http":
        return request.getfixturevalue("nginx_dav").base_url + "/resume/{jobID}/"
    if where == "s3":
        request.getfixturevalue("s3_env")
        return f"s3://{request.getfixturevalue('s3_bucket')}/resume/{{jobID}}/"
    return "local"


@pytest.mark.parametrize(
    "where", ["local", *(pytest.param(w, marks=pytest.mark.servers) for w in ("http", "s3"))]
)
def test_resume_uses_the_partial_download(request, big, tmp_path, where):
    to = _destination(request, where)
    result = jp.publish(big, to, archive=False)
    data = big.read_bytes()
    good = tmp_path / "good"
    _stage(good, "data.bin", data[: len(data) // 2])
    assert jp.fetch(result.job_id, good).verified
    assert hashlib.sha256((good / "data.bin").read_bytes()).digest() == hashlib.sha256(data).digest()

    # A corrupt partial proves the partial is really resumed from, not re-downloaded:
    # the result cannot verify, nothing is kept, and the next try starts clean.
    bad = tmp_path / "bad"
    _stage(bad, "data.bin", b"\0" * (len(data) // 2))
    with pytest.raises(IntegrityError):
        jp.fetch(result.job_id, bad)
    assert not bad.exists()
    assert not (tmp_path / ".bad.jp-partial").exists()
    assert jp.fetch(result.job_id, bad).verified


def test_fetch_bacalhau_s3_spec(s3_env, s3_bucket, big, tmp_path):
    result = jp.publish(big, f"s3://{s3_bucket}/spec/{{jobID}}")
    spec = {"Type": "s3", "Params": {"Bucket": s3_bucket, "Key": result.params["Key"]}}
    fetched = jp.fetch(spec, tmp_path / "spec")
    assert fetched.verified  # metadata sha256 and S3's ChecksumSHA256 vouch for it
    assert (tmp_path / "spec" / "data.bin").read_bytes() == big.read_bytes()


def test_serve_gives_local_results_an_http_url(big, tmp_path, isolated_home):
    import httpx
    from machines import running_serve

    with running_serve(isolated_home):
        result = jp.publish(big, "local", archive=False)
        (record,) = [f for f in result.files if f.kind == "file"]
        assert record.url and record.url.startswith("http://127.0.0.1:")
        response = httpx.get(record.url)
        assert hashlib.sha256(response.content).hexdigest() == record.sha256
        assert httpx.put(record.url, content=b"x").status_code == 405
        assert httpx.get(record.url.replace(record.url.split("/")[3] + "/", "")).status_code == 403
        fetched = jp.fetch(record.url, tmp_path / "via-http")
        assert fetched.verified  # the ledger knows what that URL must hold
    assert not (isolated_home / "serve.json").exists()
