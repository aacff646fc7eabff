"""Memory guarantees: a 1 GiB publish and fetch through real S3 (SeaweedFS) stay under 150 MB,
file by file (parts sent from disk, fetched as parallel ranges) and as the default
streamed archive (parts held in memory until sent), with concurrency on.

Speed is measured in ``benchmarks/``, never here; these tests only check that memory
stays flat whatever the file size. Each operation runs in a fresh interpreter so its
peak RSS (``ru_maxrss``) is its own. About 20 s on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_publish.testing.measure import sha256_file
from jupyter_publish.testing.seaweed import SeaweedS3

MiB = 1024 * 1024
SIZE = 1024 * MiB
LIMIT_MB = 150
_AWS_NOISE = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL")

# Runs in the child: the operation, then one JSON line with its result and peak RSS.
# Peak RSS is VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at the peak of
# the process it was forked from (here pytest, which may be bigger than the child).
_CHILD = """
import json, sys
import jupyter_publish as jp
from jupyter_publish.testing.measure import peak_rss_kb

op, args = sys.argv[1], json.loads(sys.argv[2])
if op == "publish":
    result = jp.publish(args["path"], args["to"], archive=args["archive"], quiet=True)
    [record] = [f for f in result.files if f.kind == "file"]
    out = {"job_id": result.job_id, "uri": result.uri, "sha256": record.sha256, "size": record.size}
else:
    result = jp.fetch(args["job_id"], args["dest"], quiet=True)
    out = {"files": [[str(f.path), f.size, f.sha256, f.verified_against] for f in result.files]}
out["peak_rss_kb"] = peak_rss_kb()
print(json.dumps(out))
"""


def _write_big_file(path: Path, size: int) -> str:
    """Deterministic, incompressible, non-zero data written 1 MiB at a time; returns its sha256.

    Block ``j`` is ``shake_256(j).digest(1 MiB)``: fast to make (~500 MB/s) and unlike
    zeros it cannot be stored sparsely or compressed by the server.
    """
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for block in range(size // MiB):
            data = hashlib.shake_256(block.to_bytes(8, "big")).digest(MiB)
            digest.update(data)
            out.write(data)
    return digest.hexdigest()


def _run(op: str, env: dict[str, str], **args: Any) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, op, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{op} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["plain", "archive"])
def published(
    request: pytest.FixtureRequest, s3_server: SeaweedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A 1 GiB file published (plain, or as the default archive) in a child process.

    Module-scoped so the fetch test reads back the very object the publish test
    measured; ``s3_env``/``s3_bucket`` are per test, so the same environment and a fresh
    bucket are built here from the session's ``s3_server``.
    """
    work = tmp_path_factory.mktemp("memory")
    bucket = s3_server.create_bucket("jp-memory-" + os.urandom(6).hex())
    env = {k: v for k, v in os.environ.items() if k not in _AWS_NOISE}
    env.update(s3_server.credentials_env())
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        JUPYTER_PUBLISH_HOME=str(work / "home"),
        JUPYTER_PUBLISH_QUIET="1",
    )
    source = work / "big.bin"
    try:
        sha256 = _write_big_file(source, SIZE)
        result = _run(
            "publish",
            env,
            path=str(source),
            to=f"s3://{bucket}/mem/{{jobID}}/",
            archive=request.param == "archive",
        )
        source.unlink()  # the fetch must not be able to lean on it
        yield {"env": env, "sha256": sha256, "work": work, "result": result, "mode": request.param}
    finally:
        source.unlink(missing_ok=True)
        client = s3_server.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        shutil.rmtree(work, ignore_errors=True)


def test_publish_1gib_to_s3_peak_rss_under_150mb(published: dict[str, Any]) -> None:
    result = published["result"]
    assert result["size"] == SIZE
    assert result["sha256"] == published["sha256"]
    peak_mb = result["peak_rss_kb"] * 1024 / 1e6
    print(f"publish of 1 GiB ({published['mode']}): peak RSS {peak_mb:.0f} MB")
    assert peak_mb < LIMIT_MB, f"publish of 1 GiB peaked at {peak_mb:.0f} MB RSS"


def test_fetch_1gib_from_s3_peak_rss_under_150mb_and_identical(published: dict[str, Any]) -> None:
    dest = published["work"] / "fetched"
    try:
        fetched = _run("fetch", published["env"], job_id=published["result"]["job_id"], dest=str(dest))
        [(path, size, sha256, verified)] = fetched["files"]
        assert size == SIZE
        assert sha256 == published["sha256"]
        assert verified and "sha256" in verified
        # Byte-identical: hashed again here, independently of the fetcher.
        assert sha256_file(Path(path)) == published["sha256"]
        peak_mb = fetched["peak_rss_kb"] * 1024 / 1e6
        print(f"fetch of 1 GiB ({published['mode']}): peak RSS {peak_mb:.0f} MB")
        assert peak_mb < LIMIT_MB, f"fetch of 1 GiB peaked at {peak_mb:.0f} MB RSS"
    finally:
        shutil.rmtree(dest, ignore_errors=True)
