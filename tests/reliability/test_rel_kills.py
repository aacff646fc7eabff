"""Kills leave nothing dangling (issue 9, item 6), against the real SeaweedFS.

A CLI publish of a 40 MiB file goes to S3 as five 8 MiB parts, one at a time (``--jobs 1``)
through a fault proxy that stalls the upload after three and a half parts: the process
is then mid-multipart, with three parts stored, when it is sent SIGTERM or SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import Fault, FaultProxy

import jupyter_publish as jp
from jupyter_publish import journal
from jupyter_publish.ledger import Ledger

MiB = 1024 * 1024
PART = 8 * MiB
SIZE = 5 * PART
STALL_AT = 3 * PART + PART // 2
STREAM_PART = 5 * MiB
"""An archive streams in 5 MiB parts."""
ROOT = Path(__file__).resolve().parents[2]


class CountingProxy(FaultProxy):
    """The fault proxy, also counting the bytes clients send (``up``) across connections."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.up_bytes = 0
        self._count_lock = threading.Lock()

    def _pump(self, index: int, direction: str, src: Any, dst: Any, pair: Any) -> None:  # type: ignore[override]
        if direction == "up":
            src = _Counted(src, self)
        super()._pump(index, direction, src, dst, pair)


class _Counted:
    def __init__(self, sock: Any, proxy: CountingProxy) -> None:
        self._sock, self._proxy = sock, proxy

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        with self._proxy._count_lock:
            self._proxy.up_bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """40 MiB of distinct bytes (five 8 MiB parts)."""
    path = tmp_path / "big.bin"
    block = hashlib.sha256(b"kills").digest() * (MiB // 32)
    with open(path, "wb") as out:
        for i in range(SIZE // MiB):
            out.write(bytes([i]) + block[1:])
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _start_publish(
    source: Path,
    bucket: str,
    proxy: FaultProxy,
    script: str | None = None,
    archive: bool = False,
) -> subprocess.Popen[str]:
    """A publish stalled after three and a half parts, running in a subprocess."""
    stall_at = STALL_AT if not archive else 3 * STREAM_PART + STREAM_PART // 2
    proxy.add(Fault("stall", direction="up", at=stall_at, connection=1))
    if script is None:
        command = [sys.executable, "-m", "jupyter_publish.cli", "publish", str(source)]
        command += ["--to", f"s3://{bucket}/run/", "--jobs", "1", "-q", "--endpoint", proxy.url]
        command += ["--compression", "none"] if archive else ["--no-archive"]
    else:
        command = [sys.executable, "-c", script]
    return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_mid_multipart(s3: Any, bucket: str, process: subprocess.Popen[str], parts: int = 3) -> str:
    """Wait (bounded) until the upload holds ``parts`` parts; return its UploadId."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        if uploads:
            upload = uploads[0]
            listed = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            if len(listed.get("Parts", [])) >= parts:
                return str(upload["UploadId"])
        time.sleep(0.05)
    raise AssertionError("the publish never got three parts into its multipart upload")


def _only_job(home: Path) -> dict[str, Any]:
    with sqlite3.connect(home / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM jobs")]
    assert len(rows) == 1, rows
    return rows[0]


def _open_uploads(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _temp_files(home: Path) -> list[Path]:
    return [p for p in (home / "store" / "tmp").glob("*")] if (home / "store" / "tmp").exists() else []


def test_sigterm_mid_multipart_aborts_marks_failed_and_exits_in_one_line(
    s3_env, s3_bucket, source, isolated_home
):
    s3 = s3_env.client()
    with FaultProxy(s3_env.ports["s3"]) as proxy:
        process = _start_publish(source, s3_bucket, proxy)
        _wait_mid_multipart(s3, s3_bucket, process)
        assert _only_job(isolated_home)["status"] == "running"
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        stopped = time.monotonic() - sent
    assert process.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM" in lines[0], err
    assert "Traceback" not in err
    job = _only_job(isolated_home)
    assert job["status"] == "failed" and "SIGTERM" in job["error"]
    assert _open_uploads(s3, s3_bucket) == []
    assert Ledger(isolated_home / "ledger.sqlite").open_uploads(job["job_id"]) == []
    assert _temp_files(isolated_home) == []
    print(f"SIGTERM to exit: {stopped:.2f} s")
    assert stopped < 10, f"took {stopped:.1f} s to stop"


def test_sigkill_then_jobs_shows_interrupted_and_the_next_publish_aborts_the_upload(
    s3_env, s3_bucket, source, isolated_home, tmp_path
):
    s3 = s3_env.client()
    with FaultProxy(s3_env.ports["s3"]) as proxy:
        process = _start_publish(source, s3_bucket, proxy)
        _wait_mid_multipart(s3, s3_bucket, process)
        process.kill()
        process.communicate(timeout=10)
        job_id = _only_job(isolated_home)["job_id"]
        assert _only_job(isolated_home)["status"] == "running"  # nobody recorded the kill
        assert len(_open_uploads(s3, s3_bucket)) == 1
        # A source that changed since refuses resume, in one line, and touches nothing.
        with open(source, "ab") as out:
            out.write(b"more")
        refused = _cli("resume", job_id)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
        assert "big.bin changed size" in refused.stderr, refused.stderr
        assert len(_open_uploads(s3, s3_bucket)) == 1
        listed = _cli("jobs", "--json")
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert row["job_id"] == job_id and row["status"] == "interrupted"
        assert "resume" in row["error"]
        assert _temp_files(isolated_home) == []
        # A look at the jobs keeps the partial upload, for resume to continue...
        assert len(_open_uploads(s3, s3_bucket)) == 1
        assert jp.jobs()["status"].tolist() == ["interrupted"]
        # ...and the next publish, which means the user moved on, aborts it (through the
        # endpoint the upload was recorded with: the proxy, still up).
        other = tmp_path / "other.txt"
        other.write_text("next job")
        to = ["--to", f"s3://{s3_bucket}/next/", "--endpoint", s3_env.endpoint]
        published = _cli("publish", str(other), *to, "-q")
        assert published.returncode == 0, published.stderr
    assert _open_uploads(s3, s3_bucket) == []
    assert Ledger(isolated_home / "ledger.sqlite").open_uploads(job_id) == []


def test_sigkill_then_resume_sends_only_the_missing_parts(s3_env, s3_bucket, source, isolated_home, tmp_path):
    s3 = s3_env.client()
    with CountingProxy(s3_env.ports["s3"]) as proxy:
        process = _start_publish(source, s3_bucket, proxy)
        upload_id = _wait_mid_multipart(s3, s3_bucket, process)
        process.kill()
        process.communicate(timeout=10)
        job_id = _only_job(isolated_home)["job_id"]
        stored = s3.list_parts(Bucket=s3_bucket, Key="run/big.bin", UploadId=upload_id)["Parts"]
        assert len(stored) == 3
        # The user looks for the job ID first: the listing must not throw the parts away.
        listed = _cli("jobs", "--json")
        assert [r["status"] for r in json.loads(listed.stdout)] == ["interrupted"]
        proxy.clear()
        before = proxy.up_bytes
        resumed = _cli("resume", job_id[:10], "--json")
        sent = proxy.up_bytes - before
        assert resumed.returncode == 0, resumed.stderr
        assert "3 part(s) already stored were kept, 2 sent" in resumed.stderr
        # Two 8 MiB parts crossed the wire again, not five (plus a few KiB of requests).
        assert 2 * PART <= sent < 2 * PART + MiB, sent
        result = json.loads(resumed.stdout)
        assert result["job_id"] == job_id
        job = _only_job(isolated_home)
        assert job["status"] == "published" and job["pid"] != process.pid
        assert _open_uploads(s3, s3_bucket) == []
        fetched = jp.fetch(job_id, tmp_path / "back")
    assert fetched.verified
    (back,) = [f.path for f in fetched.files]
    assert Path(back).read_bytes() == source.read_bytes()


def test_sigkill_then_resume_of_an_archive_keeps_the_parts_it_remakes_identically(
    s3_env, s3_bucket, source, isolated_home, tmp_path
):
    """The archive is made again from scratch; it is byte-identical (fixed tar headers),
    so the parts already stored match their MD5 and are kept."""
    s3 = s3_env.client()
    with CountingProxy(s3_env.ports["s3"]) as proxy:
        process = _start_publish(source, s3_bucket, proxy, archive=True)
        _wait_mid_multipart(s3, s3_bucket, process)
        process.kill()
        process.communicate(timeout=10)
        job_id = _only_job(isolated_home)["job_id"]
        proxy.clear()
        before = proxy.up_bytes
        resumed = _cli("resume", job_id)
        sent = proxy.up_bytes - before
        assert resumed.returncode == 0, resumed.stderr
        assert "3 part(s) already stored were kept, 6 sent" in resumed.stderr, resumed.stderr
        assert sent < SIZE - 3 * STREAM_PART + MiB, sent
        fetched = jp.fetch(job_id, tmp_path / "back")
    assert fetched.verified
    assert (tmp_path / "back" / "big.bin").read_bytes() == source.read_bytes()


def test_sigterm_in_a_script_cleans_up_then_ends_the_process(s3_env, s3_bucket, source, isolated_home):
    """The API in a plain process (no handler of its own): cleanup first, then the
    default SIGTERM behaviour the host expects (the process ends by the signal)."""
    s3 = s3_env.client()
    with FaultProxy(s3_env.ports["s3"]) as proxy:
        script = (
            "import jupyter_publish as jp\n"
            f"jp.publish([{str(source)!r}], 's3://{s3_bucket}/api/', archive=False,"
            f" endpoint={proxy.url!r}, max_concurrency=1, quiet=True)\n"
        )
        process = _start_publish(source, s3_bucket, proxy, script)
        _wait_mid_multipart(s3, s3_bucket, process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    job = _only_job(isolated_home)
    assert job["status"] == "failed" and "SIGTERM" in job["error"]
    assert _open_uploads(s3, s3_bucket) == []


def test_a_hosts_own_sigterm_handler_is_kept(tmp_path):
    def host_handler(signum: int, frame: Any) -> None:
        pass

    (tmp_path / "a.txt").write_text("a")
    previous = signal.signal(signal.SIGTERM, host_handler)
    try:
        jp.publish(tmp_path / "a.txt", quiet=True)
        assert signal.getsignal(signal.SIGTERM) is host_handler
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        jp.publish(tmp_path / "a.txt", quiet=True)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigkill_during_a_local_publish_leaves_no_temp_files(tmp_path, isolated_home):
    """The local store copies through a temp file: a killed job's is removed next run."""
    big = tmp_path / "local.bin"
    with open(big, "wb") as out:
        for i in range(96):
            out.write(bytes([i]) * MiB)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_publish.cli", "publish", str(big), "-q", "--no-archive"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not _temp_files(isolated_home) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    if process.poll() is not None:
        pytest.skip("the local publish finished before it could be killed mid-copy")
    process.kill()
    process.communicate(timeout=10)
    assert _temp_files(isolated_home), "the kill left no temp file to clean"
    job_id = _only_job(isolated_home)["job_id"]
    listed = _cli("jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["status"] for r in json.loads(listed.stdout)] == ["interrupted"]
    assert _temp_files(isolated_home) == []
    resumed = _cli("resume", job_id)
    assert resumed.returncode == 0, resumed.stderr
    assert _only_job(isolated_home)["status"] == "published"


def test_a_reused_pid_or_another_host_is_judged_right(isolated_home):
    pid, _host, started = journal.identity()
    assert journal.is_alive(pid, started)
    assert not journal.is_alive(pid, str(int(started or 0) + 1)) or started is None
    ledger = Ledger()
    ledger.start(
        job_id="j-here", execution_id="e", node_id="n", name="x", scheme="local", destination="local"
    )
    ledger.start(
        job_id="j-away", execution_id="e", node_id="n", name="x", scheme="local", destination="local"
    )
    with sqlite3.connect(ledger.path) as db:  # a dead process here; one on another machine
        db.execute("UPDATE jobs SET proc_start='1' WHERE job_id='j-here'")
        db.execute("UPDATE jobs SET host='elsewhere', pid=1 WHERE job_id='j-away'")
    statuses = {r["job_id"]: r["status"] for r in ledger.jobs()}
    assert statuses == {"j-here": "interrupted", "j-away": "running"}
    assert ledger.status("j-here")["status"] == "interrupted"


def test_an_old_ledger_gains_the_liveness_columns(isolated_home):
    path = isolated_home / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, node_id TEXT NOT NULL,"
            " name TEXT NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL, destination TEXT NOT NULL,"
            " uri TEXT, url TEXT, root_cid TEXT, n_files INTEGER, total_size INTEGER,"
            " created_at TEXT NOT NULL, finished_at TEXT, error TEXT, result_json TEXT);"
            "INSERT INTO jobs (job_id, execution_id, node_id, name, status, type, destination, created_at)"
            " VALUES ('j-old', 'e', 'n', 'x', 'running', 'local', 'local', '2024-01-01T00:00:00Z');"
        )
    ledger = Ledger(path)
    assert [r["status"] for r in ledger.jobs()] == ["running"]  # no PID known: never called dead
    row = ledger.job_row("j-old")
    assert {"pid", "host", "proc_start", "spec_json"} <= set(row)
