"""Two processes fetching the same job into the same folder both end verified.

Before the destination lock they shared one staging folder and one or both failed
(7 of 8 trials). Now the second waits while the first makes progress, then finds the
verified result in place; nothing is left in the parent folder but the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jupyter_publish as jp

MiB = 1024 * 1024
_CHILD = """
import json, sys, time
import jupyter_publish as jp
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))  # both begin at the same instant
result = jp.fetch(sys.argv[1], sys.argv[2], max_concurrency=4)
print(json.dumps({"verified": result.verified, "files": len(result.files)}))
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "big.bin").write_bytes(os.urandom(12 * MiB))  # read in ranges: it takes a moment
    for i in range(20):
        (src / "sub" / f"f{i}.txt").write_bytes(os.urandom(1000 + i))
    return src


def _run_pair(ref: str, dest: Path) -> list[subprocess.CompletedProcess[str]]:
    start = str(time.time() + 1.0)
    args = [sys.executable, "-c", _CHILD, ref, str(dest), start]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": os.environ}
    procs = [subprocess.Popen(args, **pipes) for _ in range(2)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _digest_tree(root: Path) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for current, dirs, files in os.walk(root):
        base = Path(current).relative_to(root)
        found.update({(base / d).as_posix(): None for d in dirs})
        for name in files:
            data = (Path(current) / name).read_bytes()
            found[(base / name).as_posix()] = hashlib.sha256(data).hexdigest()
    return found


@pytest.mark.parametrize("where", ["local-archive", pytest.param("s3-plain", marks=pytest.mark.servers)])
def test_two_fetches_into_one_folder_both_end_verified(request, source, tmp_path, where):
    if where == "s3-plain":
        request.getfixturevalue("s3_env")
        result = jp.publish(source, f"s3://{request.getfixturevalue('s3_bucket')}/two/", archive=False)
    else:
        result = jp.publish(source, "local", archive=True)
    expected = _digest_tree(source)
    for trial in range(4):
        parent = tmp_path / f"trial{trial}"
        parent.mkdir()
        dest = parent / "back"
        for proc in _run_pair(result.job_id, dest):
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"verified": True, "files": 21}
            assert proc.stderr.strip() == ""
        assert _digest_tree(dest) == expected
        assert sorted(p.name for p in parent.iterdir()) == ["back"]  # no staging, no lock file


def test_a_stalled_holder_is_named_in_one_line(source, tmp_path, monkeypatch):
    """A live process holding the destination and making no progress: one line, bounded."""
    result = jp.publish(source, "local", archive=False)
    dest = tmp_path / "back"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from jupyter_publish.fetcher import destination_lock\n"
            "with destination_lock(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(60)\n",
            str(dest),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", "0.5")
        started = time.monotonic()
        with pytest.raises(jp.PublishError) as caught:
            jp.fetch(result.job_id, dest)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert "\n" not in message and f"process {holder.pid}" in message and "another fetch" in message
    assert 0.5 <= waited < 5
    assert not dest.exists()
    # The holder died (as after kill -9): the OS released its lock, the next fetch works.
    assert jp.fetch(result.job_id, dest).verified
    assert _digest_tree(dest) == _digest_tree(source)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".back")) == []


def test_the_lock_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Another account able to open the lock file could flock it and stall our fetches."""
    from jupyter_publish.fetcher import destination_lock

    old = os.umask(0)
    try:
        with destination_lock(tmp_path / "out"):
            lock = tmp_path / ".out.jp-lock"
            mode = lock.stat().st_mode & 0o777
    finally:
        os.umask(old)
    assert mode == 0o600, oct(mode)
