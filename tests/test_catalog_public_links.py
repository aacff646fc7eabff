"""Presigned links stay in the user's own ledger (review of issue 12, #4 and 19b): a
catalog record, read by every member of the team for good, holds every URL without its
signature, key ID or password (``redact.public_url``, also the RO-Crate's and git's)."""

from __future__ import annotations

import pytest

import jupyter_publish as jp
from jupyter_publish import redact
from jupyter_publish.ledger import Ledger


@pytest.mark.parametrize(
    ("url", "public"),
    [
        (
            "https://b.s3.example/k?X-Amz-Algorithm=A&X-Amz-Credential=AKIAX&X-Amz-Signature=ff",
            "https://b.s3.example/k",
        ),
        ("https://h/x?AWSAccessKeyId=AKIA&Signature=abc&Expires=1", "https://h/x"),
        ("https://acct.blob.example/c/x?sv=1&sig=abcdef", "https://acct.blob.example/c/x"),
        ("https://alice:pw123456@host:8443/a/b", "https://host:8443/a/b"),
        (
            "https://ipfs.example/ipfs/bafy/x?filename=a.csv",
            "https://ipfs.example/ipfs/bafy/x?filename=a.csv",
        ),
        ("s3://bucket/key", "s3://bucket/key"),
    ],
)
def test_public_url(url, public):
    assert redact.public_url(url) == public


@pytest.mark.parametrize("archive", [True, False])
def test_a_presigned_publish_writes_no_signature_to_the_catalog(
    s3_env, s3_bucket, results, tmp_path, archive
):
    shared = tmp_path / "team"
    shared.mkdir()
    result = jp.publish(results, f"s3://{s3_bucket}/p", presign="15m", catalog=str(shared), archive=archive)
    links = [result.url] if archive else [f.url for f in result.files if f.kind == "file"]
    assert links and all(link and "X-Amz-Signature" in link for link in links)  # the user's own links
    assert "X-Amz-Signature" in Ledger().job_row(result.job_id)["result_json"]  # kept in the ledger
    written = [p.read_bytes() for p in (shared / "records").glob("*.json")]
    assert written
    for data in written:
        for marker in (b"X-Amz-Signature", b"X-Amz-Credential", b"Signature=", s3_env.access_key.encode()):
            assert marker not in data
        assert f"{s3_bucket}".encode() in data
