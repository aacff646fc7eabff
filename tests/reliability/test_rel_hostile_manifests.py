"""Hostile JSON where a fetch reads a store's own records: one line, never a traceback.

A sidecar manifest at an S3 prefix (``.jupyter-publish.json``) and the local store's
job index come from places anyone with write access may have changed: deep nesting,
wrong types and missing keys give one PublishError line, never RecursionError,
TypeError, AttributeError or KeyError.
"""

from __future__ import annotations

import json

import pytest

import jupyter_publish as jp
from jupyter_publish.backends.local import store_root
from jupyter_publish.errors import PublishError

HOSTILE = {
    "deep-arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "not-json": b"\xff\xfe not json at all",
    "a-list": b"[1, 2, 3]",
    "a-string": b'"manifest"',
    "missing-manifest": b'{"Type": "s3"}',
    "manifest-a-string": b'{"manifest": "table.csv"}',
    "manifest-a-dict": b'{"manifest": {"path": "table.csv"}}',
    "entry-a-number": b'{"manifest": [1]}',
    "entry-without-path": b'{"manifest": [{"sha256": null}]}',
    "path-a-number": b'{"manifest": [{"path": 7}]}',
    "sha-a-number": b'{"manifest": [{"path": "table.csv", "sha256": 12}]}',
    "sha-a-list": b'{"manifest": [{"path": "table.csv", "sha256": ["x"]}]}',
    "sha-not-hex": b'{"manifest": [{"path": "table.csv", "sha256": "zz"}]}',
    "cid-a-dict": b'{"manifest": [{"path": "table.csv", "cid": {"/": "x"}}]}',
    "cid-garbage": b'{"manifest": [{"path": "table.csv", "cid": "not-a-cid"}]}',
    "kind-a-list": b'{"manifest": [{"path": "table.csv", "kind": ["dir"]}]}',
    "dir-escapes": b'{"manifest": [{"path": "../../etc", "kind": "dir"}]}',
}


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert isinstance(exc, PublishError), f"{type(exc).__name__}: {message[:200]}"
    assert "\n" not in message and 0 < len(message) < 400
    return message


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_sidecar_manifest_at_an_s3_prefix_is_one_line(s3_env, s3_bucket, tmp_path, case):
    prefix = f"hostile/{case}/"
    client = s3_env.client()
    client.put_object(Bucket=s3_bucket, Key=prefix + "table.csv", Body=b"a,b\n1,2\n")
    client.put_object(Bucket=s3_bucket, Key=prefix + ".jupyter-publish.json", Body=HOSTILE[case])
    dest = tmp_path / "back"
    with pytest.raises(Exception) as caught:
        jp.fetch(f"s3://{s3_bucket}/{prefix}", dest)
    message = _one_line(caught.value)
    assert "jupyter-publish.json" in message or "etc" in message
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".back")]


def test_a_good_sidecar_manifest_still_vouches_for_the_files(s3_env, s3_bucket, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "table.csv").write_bytes(b"a,b\n1,2\n")
    result = jp.publish(src, f"s3://{s3_bucket}/fine/", archive=False)
    body = s3_env.client().get_object(Bucket=s3_bucket, Key="fine/.jupyter-publish.json")["Body"].read()
    assert json.loads(body)["manifest"]
    back = jp.fetch(result.uri, tmp_path / "back")
    assert back.verified and [f.verified_against for f in back.files] == ["sha256+cid"]


@pytest.mark.parametrize(
    "case", ["deep-arrays", "not-json", "a-list", "entry-a-number", "sha-a-number", "size-a-string"]
)
def test_hostile_local_job_index_is_one_line(tmp_path, case):
    src = tmp_path / "src"
    src.mkdir()
    (src / "table.csv").write_bytes(b"a,b\n1,2\n")
    result = jp.publish(src, "local", archive=False)
    index = store_root() / "jobs" / f"{result.job_id}.json"
    sha = json.loads(index.read_text())["table.csv"]["sha256"]
    body = {
        "size-a-string": json.dumps({"table.csv": {"sha256": sha, "size": "8"}}).encode(),
        "entry-a-number": b'{"table.csv": 1}',
        "sha-a-number": b'{"table.csv": {"sha256": 1, "size": 8}}',
    }.get(case, HOSTILE.get(case))
    index.write_bytes(body)
    for ref in (result.uri, result.job_id):
        with pytest.raises(Exception) as caught:
            jp.fetch(ref, tmp_path / "back")
        assert "index" in _one_line(caught.value)
