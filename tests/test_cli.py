"""The command line, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from jupyter_publish.cid import cid_of


def run(*args: str, env=None, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    (root / "a.csv").write_text("x,y\n1,2\n")
    (root / "b.txt").write_text("hello world\n")
    return root


def test_publish_json_then_jobs_json(results):
    out = run("publish", str(results), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["Type"] == "local"
    assert {m["path"]: m["sha256"] for m in doc["manifest"] if m["kind"] == "file"} == {
        name: hashlib.sha256((results / name).read_bytes()).hexdigest() for name in ("a.csv", "b.txt")
    }
    jobs = json.loads(run("jobs", "--json").stdout)
    assert [j["job_id"] for j in jobs] == [doc["job_id"]]
    cids = json.loads(run("cids", doc["job_id"], "--json").stdout)
    assert {c["path"]: c["cid"] for c in cids if c["kind"] == "file"}["b.txt"] == (
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    )


def test_fetch_by_job_id(results, tmp_path):
    job = json.loads(run("publish", str(results), "--json").stdout)["job_id"]
    out = run("fetch", job, "--to", str(tmp_path / "back"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verified"] is True
    assert (tmp_path / "back" / "a.csv").read_text() == "x,y\n1,2\n"


def test_cid_command_matches_library(results):
    out = run("cid", str(results), "--cid-version", "1")
    assert out.returncode == 0
    assert out.stdout.split()[0] == cid_of(results, 1)


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["publish", "{missing}", "--to", "local"], 1, "no such file"),
        (["publish", "RESULTS", "--to", "s3://b1/{nope}"], 2, "unknown placeholder {nope}"),
        (["publish", "RESULTS", "--to", "ftp://x"], 2, "unknown destination"),
        (["publish", "RESULTS", "--to", "s3://"], 2, "no bucket"),
        (["publish", "RESULTS", "--bogus"], 2, "unrecognized arguments"),
        (["fetch", "j-doesnotexist"], 1, "no job"),
        (["publish", "RESULTS", "--to", "http://[::1/x"], 2, "malformed URL"),
        (["publish", "RESULTS", "--to", "s3://bkt/k", "--endpoint", "notaurl"], 2, "is not a URL"),
        (["publish", "FIFO"], 1, "not a regular file"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(results, tmp_path, args, code, fragment):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = [
        a.replace("RESULTS", str(results))
        .replace("{missing}", str(tmp_path / "missing"))
        .replace("FIFO", str(fifo))
        for a in args
    ]
    out = run(*args)
    assert out.returncode == code
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert fragment in lines[0]
    assert "Traceback" not in out.stderr


def test_demo_runs_with_nothing_configured(tmp_path):
    out = run("demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout
    assert "measurements.csv" in out.stdout
    assert "published" in out.stdout


def test_unwritable_home_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = run("jobs", env={"JUPYTER_PUBLISH_HOME": str(blocker / "home")})
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "JUPYTER_PUBLISH_HOME" in out.stderr
