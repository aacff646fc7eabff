"""The transfer engine: a bounded pool, clean cancellation, parallel parts and ranges.

Unit tests of the scheduler use plain functions; the rest run against the real
SeaweedFS and nginx servers the fixtures start on loopback.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import botocore.client
import pytest

import jupyter_publish as jp
from jupyter_publish import transfer
from jupyter_publish.errors import DestinationError
from jupyter_publish.ledger import Ledger

MiB = 1024 * 1024


# -- the scheduler ---------------------------------------------------------------------------


def test_run_all_keeps_order_and_really_runs_in_parallel():
    barrier = threading.Barrier(4, timeout=5)  # only passes if 4 tasks are in flight at once

    def task(i: int) -> int:
        barrier.wait()
        return i * i

    assert transfer.run_all([lambda i=i: task(i) for i in range(8)], 4) == [i * i for i in range(8)]


def test_run_all_never_exceeds_its_bound_and_submits_lazily():
    lock = threading.Lock()
    running = peak = pulled = finished = ahead = 0

    def task() -> None:
        nonlocal running, peak, finished
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
            finished += 1

    def tasks():
        nonlocal pulled, ahead
        for _ in range(300):
            pulled += 1
            with lock:
                ahead = max(ahead, pulled - finished)
            yield task

    transfer.run_all(tasks(), 3)
    assert peak == 3
    assert pulled == finished == 300
    assert ahead <= 2 * 3 + 1  # 20,000 files never become 20,000 queued futures


def test_first_failure_cancels_the_rest_and_is_the_one_raised():
    started: list[int] = []
    stopped_early = threading.Event()

    def slow(i: int) -> int:
        started.append(i)
        try:
            for _ in range(200):  # a long transfer that checks for cancellation per chunk
                transfer.check_cancelled()
                time.sleep(0.01)
        except transfer.Cancelled:
            stopped_early.set()
            raise
        return i

    def failing() -> int:
        time.sleep(0.05)
        raise ValueError("disk full")

    tasks = [lambda: slow(0), failing] + [lambda i=i: slow(i) for i in range(1, 100)]
    begin = time.monotonic()
    with pytest.raises(ValueError, match="disk full"):
        transfer.run_all(tasks, 2)
    assert time.monotonic() - begin < 1.5  # slow(0) would take 2 s without cancellation
    assert stopped_early.is_set()
    assert len(started) < 10  # the queued tasks never started
    assert not [t for t in threading.enumerate() if t.name.startswith("jupyter-publish-transfer")]


def test_one_worker_runs_inline_without_threads():
    names = transfer.run_all([lambda: threading.current_thread().name] * 3, 1)
    assert names == [threading.current_thread().name] * 3


@pytest.mark.parametrize("bad", [0, 65, "many", -1, 2.5, True])
def test_concurrency_is_checked(bad):
    with pytest.raises(DestinationError, match="max_concurrency"):
        transfer.concurrency(bad)


def test_a_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_JOBS", "0")
    with pytest.raises(DestinationError, match="JUPYTER_PUBLISH_JOBS must be 1 to 64"):
        transfer.concurrency(None)


def test_concurrency_default_and_environment(monkeypatch):
    assert transfer.concurrency(None) == 10
    monkeypatch.setenv("JUPYTER_PUBLISH_JOBS", "3")
    assert transfer.concurrency(None) == 3
    assert transfer.concurrency(5) == 5


# -- S3: requests, parts, ranges -------------------------------------------------------------


@pytest.fixture
def s3_calls(monkeypatch):
    """Every S3 operation boto3 makes in this test, by name (a spy; the call still happens)."""
    calls: list[str] = []
    lock = threading.Lock()
    original = botocore.client.BaseClient._make_api_call

    def spy(self, operation_name, api_params):
        with lock:
            calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


def _tree(root, count: int, size: int = 8192):
    for i in range(count):
        path = root / f"d{i % 5}" / f"f{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(hashlib.sha256(str(i).encode()).digest() * (size // 32))
    return root


def test_plain_s3_publish_is_one_put_per_file_and_no_head(s3_env, s3_bucket, tmp_path, s3_calls):
    folder = _tree(tmp_path / "many", 60)
    result = jp.publish(
        folder, f"s3://{s3_bucket}/many/", archive=False, endpoint=s3_env.endpoint, max_concurrency=8
    )
    assert s3_calls.count("PutObject") == 60 + 1  # every file, then the manifest
    assert "HeadObject" not in s3_calls
    files = {f.path: f for f in result.files if f.kind == "file"}
    assert len(files) == 60
    for path, record in files.items():
        assert record.sha256 == hashlib.sha256((folder / path).read_bytes()).hexdigest()
    s3_calls.clear()
    back = jp.fetch(result.job_id, tmp_path / "back", max_concurrency=8)
    assert back.verified and len(back.files) == 60
    assert s3_calls.count("GetObject") == 60 and "HeadObject" not in s3_calls
    for path in files:
        assert (tmp_path / "back" / path).read_bytes() == (folder / path).read_bytes()


def test_multipart_parts_carry_checksums_and_large_fetch_uses_parallel_ranges(
    s3_env, s3_bucket, tmp_path, s3_calls
):
    big = tmp_path / "in" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as out:
        for i in range(5):  # 40 MiB + a tail: 6 parts of 8 MiB
            out.write(hashlib.sha256(bytes([i])).digest() * (MiB // 32) * 8)
        out.write(b"tail")
    result = jp.publish(big.parent, f"s3://{s3_bucket}/big/", archive=False, endpoint=s3_env.endpoint)
    assert s3_calls.count("UploadPart") == 6 and s3_calls.count("CompleteMultipartUpload") == 1
    assert "HeadObject" not in s3_calls
    [record] = [f for f in result.files if f.kind == "file"]
    assert record.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    s3 = s3_env.client()
    head = s3.head_object(Bucket=s3_bucket, Key="big/big.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == big.stat().st_size
    assert head.get("ChecksumSHA256", "").endswith("-6")  # the store checked every part
    s3_calls.clear()
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    assert s3_calls.count("GetObject") == 6  # 8 MiB ranges, read in parallel
    assert (tmp_path / "back" / "big.bin").read_bytes() == big.read_bytes()


def test_a_failing_object_fails_the_job_and_stops_the_others(s3_env, s3_bucket, tmp_path, monkeypatch):
    """A connection lost on one object (injected in boto3) cancels the rest of the job."""
    import botocore.exceptions

    folder = _tree(tmp_path / "many", 200)
    puts: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def flaky(self, operation_name, api_params):
        if operation_name == "PutObject":
            puts.append(api_params["Key"])
            if api_params["Key"].endswith("f0005.bin"):
                raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
            time.sleep(0.01)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", flaky)
    with pytest.raises(jp.PublishError, match="cannot reach the S3 endpoint"):
        jp.publish(folder, f"s3://{s3_bucket}/x/", archive=False, endpoint=s3_env.endpoint)
    [row] = Ledger().jobs()
    assert row["status"] == "failed" and "cannot reach the S3 endpoint" in row["error"]
    assert len(puts) < 60  # the other 195 files were not sent after the failure
    # The job returns after a 1 s grace; a worker still finishing its one request (on a
    # busy machine) ends right after, and none starts another.
    deadline = time.monotonic() + 10
    while [t for t in threading.enumerate() if t.name.startswith("jupyter-publish")]:
        assert time.monotonic() < deadline, threading.enumerate()
        time.sleep(0.05)
    assert len(puts) < 60


# -- HTTP: concurrent PUTs, ranged GETs when the server offers them --------------------------


def _access_log(server) -> list[str]:
    return (server.workdir / "logs" / "access.log").read_text().splitlines()


def test_http_plain_publish_and_ranged_fetch(nginx_dav, tmp_path):
    folder = _tree(tmp_path / "many", 30)
    big = folder / "big.bin"
    big.write_bytes(os.urandom(20 * MiB + 5))
    url = f"{nginx_dav.base_url}/transfer-{os.getpid()}-{time.monotonic_ns()}/"
    result = jp.publish(folder, url, archive=False, max_concurrency=6)
    stored = {f.path: f for f in result.files if f.kind == "file"}
    assert len(stored) == 31
    for path, record in stored.items():
        assert record.sha256 == hashlib.sha256((folder / path).read_bytes()).hexdigest()
    before = len(_access_log(nginx_dav))
    back = jp.fetch(result.job_id, tmp_path / "back", max_concurrency=4)
    assert back.verified
    assert (tmp_path / "back" / "big.bin").read_bytes() == big.read_bytes()
    requests = _access_log(nginx_dav)[before:]
    big_gets = [line for line in requests if "GET " in line and "/big.bin" in line]
    assert len(big_gets) == 3 and all('" 206 ' in line for line in big_gets)  # 8+8+4 MiB ranges


@pytest.mark.servers  # starts its own nginx
def test_http_server_without_ranges_is_read_in_one_stream(tmp_path):
    from jupyter_publish.testing.nginx import Nginx

    with Nginx(ranges=False, workdir=tmp_path / "n") as server:
        data = os.urandom(18 * MiB)
        src = tmp_path / "src"
        src.mkdir()
        (src / "one.bin").write_bytes(data)
        result = jp.publish(src, server.base_url + "/norange/", archive=False)
        back = jp.fetch(result.job_id, tmp_path / "back")
        assert back.verified and (tmp_path / "back" / "one.bin").read_bytes() == data
        gets = [line for line in _access_log(server) if "GET " in line and "one.bin" in line]
        assert len(gets) == 1 and '" 200 ' in gets[0]


def test_ranged_fetch_interrupted_resumes_from_the_hashed_prefix(s3_env, s3_bucket, tmp_path, monkeypatch):
    """A connection lost in the 4th range: the next fetch asks only for what is missing."""
    import botocore.exceptions

    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(40 * MiB)
    (src / "big.bin").write_bytes(data)
    result = jp.publish(src, f"s3://{s3_bucket}/resume/", archive=False, endpoint=s3_env.endpoint)
    ranges: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def flaky(self, operation_name, api_params):
        if operation_name == "GetObject":
            ranges.append(api_params.get("Range", ""))
            if api_params.get("Range", "").startswith(f"bytes={3 * 8 * MiB}-"):
                raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", flaky)
    dest = tmp_path / "back"
    with pytest.raises(jp.PublishError, match="cannot reach"):
        jp.fetch(result.job_id, dest, max_concurrency=2)
    part = tmp_path / ".back.jp-partial" / "objects" / "big.bin"
    kept = part.stat().st_size
    assert kept % (8 * MiB) == 0 and 0 < kept <= 3 * 8 * MiB  # only whole, hashed ranges survive
    assert part.read_bytes() == data[:kept]
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", original)
    ranges.clear()
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", _spy(ranges))
    back = jp.fetch(result.job_id, dest, max_concurrency=2)
    assert back.verified and (dest / "big.bin").read_bytes() == data
    assert ranges and all(int(r.split("=")[1].split("-")[0]) >= kept for r in ranges)


def _spy(log: list[str]):
    original = botocore.client.BaseClient._make_api_call

    def spy(self, operation_name, api_params):
        if operation_name == "GetObject":
            log.append(api_params.get("Range", ""))
        return original(self, operation_name, api_params)

    return spy
