"""Stale multipart uploads never hold a publish (review, item 2).

Every publish aborts the open multipart uploads earlier jobs left behind. An endpoint
that is gone or firewalled used to hold every later publish, even to ``local``, for
boto3's timeouts, forever; and the abort ignored the job's ``--profile``. Now the aborts
run behind the publish (at most 2 s waited), a record is given up after a few failed
tries, and each upload is aborted with the profile it was made with.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish import journal
from jupyter_publish.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


def _stale_upload(home: Path, endpoint: str, upload_id: str = "stale-upload", **extra: str) -> Ledger:
    """A failed job whose multipart upload at ``endpoint`` is still recorded as open."""
    ledger = Ledger(home / "ledger.sqlite")
    job_id = f"j-stale-{upload_id}"
    ledger.start(
        job_id=job_id, execution_id="e", node_id="n", name="old", scheme="s3", destination="s3://b/k"
    )
    ledger.fail(job_id, "failed earlier")
    bucket, key = extra.get("bucket", "b"), extra.get("key", "k")
    ledger.record_upload(job_id, endpoint, "us-east-1", bucket, key, upload_id, extra.get("profile"))
    return ledger


def _attempts(home: Path, upload_id: str) -> int | None:
    with sqlite3.connect(home / "ledger.sqlite") as db:
        row = db.execute("SELECT attempts FROM multipart_uploads WHERE upload_id=?", (upload_id,)).fetchone()
    return None if row is None else int(row[0])


def _publish_local(tmp_path: Path, n: int) -> float:
    src = tmp_path / f"note{n}.txt"
    src.write_text(f"result {n}")
    started = time.monotonic()
    jp.publish(src, "local", quiet=True)
    return time.monotonic() - started


def test_a_firewalled_endpoint_does_not_hold_a_local_publish(isolated_home, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDREVIEW")  # credentials: the request goes out
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "review-secret")
    # Accepts connections (the kernel's backlog) and never answers: a firewalled or hung endpoint.
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        _stale_upload(isolated_home, endpoint)
        baseline = _publish_local(tmp_path, 0)  # the abort starts here (and hangs behind)
        again = _publish_local(tmp_path, 1)
        assert baseline < 3 + 0.5, f"the first local publish took {baseline:.1f} s"
        assert again < 1.5, f"a later local publish took {again:.1f} s"
        assert _attempts(isolated_home, "stale-upload") == 1  # one abort in flight, not two
    print(f"local publish with a stalled stale upload: {baseline:.2f} s, then {again:.2f} s")


def test_an_upload_that_cannot_be_aborted_is_given_up_after_five_tries(isolated_home, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    ledger = _stale_upload(isolated_home, f"http://127.0.0.1:{port}")  # nothing listens there
    for n in range(journal.ABORT_TRIES + 3):
        _publish_local(tmp_path, n)
        deadline = time.monotonic() + 20
        while _attempts(isolated_home, "stale-upload") == n and time.monotonic() < deadline:
            time.sleep(0.05)  # the abort goes on behind the publish
        if _attempts(isolated_home, "stale-upload") is None:
            break
    assert n + 1 == journal.ABORT_TRIES, f"given up after {n + 1} publishes"
    assert ledger.open_uploads("j-stale-stale-upload") == []
    error = ledger.job_row("j-stale-stale-upload")["error"]
    assert (
        "failed earlier" in error and "stale-upload" in error and "could not be aborted in 5 tries" in error
    )


def test_an_upload_is_aborted_with_the_profile_it_was_made_with(s3_env, s3_bucket, isolated_home, tmp_path):
    s3 = s3_env.client()
    key = "profiled/big.bin"
    upload_id = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * (5 << 20))
    _stale_upload(isolated_home, s3_env.endpoint, upload_id, bucket=s3_bucket, key=key, profile="jp-review")
    (tmp_path / "credentials").write_text(
        f"[jp-review]\naws_access_key_id = {s3_env.access_key}\naws_secret_access_key = {s3_env.secret_key}\n"
    )
    (tmp_path / "config").write_text("[profile jp-review]\nregion = us-east-1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # no default credentials
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "credentials")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "config")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    (tmp_path / "next.txt").write_text("the next job")
    command = [sys.executable, "-m", "jupyter_publish.cli", "publish", str(tmp_path / "next.txt"), "-q"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert Ledger(isolated_home / "ledger.sqlite").open_uploads(f"j-stale-{upload_id}") == []


def test_an_older_ledger_gains_the_new_columns(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:  # multipart_uploads as the previous version made it
        db.execute(
            "CREATE TABLE multipart_uploads (upload_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, endpoint TEXT,"
            " region TEXT, bucket TEXT NOT NULL, key TEXT NOT NULL, created_at TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO multipart_uploads VALUES ('u', 'j', NULL, NULL, 'b', 'k', '2020-01-01T00:00:00Z')"
        )
    ledger = Ledger(path)
    [row] = ledger.open_uploads("j")
    assert row["profile"] is None and row["attempts"] == 0
    ledger.record_upload("j", None, None, "b", "k2", "u2", "named")
    assert {r["upload_id"]: r["profile"] for r in ledger.open_uploads("j")} == {"u": None, "u2": "named"}


@pytest.fixture(autouse=True)
def _no_profile(monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
