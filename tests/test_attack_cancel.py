"""Adversarial: cancellation must be prompt even when the store stops answering.

A "stalled" S3 endpoint accepts connections and never replies (a dead NAT entry, a
frozen proxy, a laptop waking up on another network). Workers blocked in a socket read
never reach ``check_cancelled()``, and ``run_all`` waits for them
(``pool.shutdown(wait=True)``) for botocore's 60 s read timeout times 5 attempts:
Ctrl-C (a notebook's interrupt) and the first real failure are both held for minutes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest


@pytest.fixture
def stalled_endpoint():
    """An HTTP endpoint on 127.0.0.1 that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(256)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


def _files(root, count=12):
    root.mkdir()
    for i in range(count):
        (root / f"f{i:03d}.txt").write_text(f"file {i}\n" * 10)
    return root


def _env(s3_env, endpoint):
    return {**os.environ, **s3_env.credentials_env(), "AWS_ENDPOINT_URL_S3": endpoint}


def _run_and_wait(cmd, env, wait, signal_after=None):
    child = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        if signal_after is not None:
            time.sleep(signal_after)
            child.send_signal(signal.SIGINT)
        started = time.monotonic()
        try:
            out, err = child.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - started, ""
        return child.returncode, time.monotonic() - started, out + err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def test_ctrl_c_while_the_store_stalls_exits_promptly(s3_env, stalled_endpoint, tmp_path):
    src = _files(tmp_path / "src")
    cmd = [sys.executable, "-m", "jupyter_publish.cli", "publish", str(src),
           "--to", "s3://bucket/stalled/", "--no-archive"]  # fmt: skip
    code, took, output = _run_and_wait(cmd, _env(s3_env, stalled_endpoint), wait=15, signal_after=2)
    assert code is not None, "Ctrl-C did not stop a publish to a stalled store within 15 s"
    assert code != 0 and took < 10, (code, took, output[-500:])


_CHILD = textwrap.dedent(
    """
    import sys, time
    import jupyter_publish as jp
    import jupyter_publish.publisher as pub
    from jupyter_publish.errors import SourceError
    original = pub._open_source
    def opener(path):
        if path.name == "f005.txt":
            time.sleep(1)
            raise SourceError(f"cannot read {path}: it vanished")
        return original(path)
    pub._open_source = opener
    started = time.monotonic()
    try:
        jp.publish(sys.argv[1], "s3://bucket/stalled/", archive=False, max_concurrency=12)
    except SourceError as exc:
        print(f"raised after {time.monotonic() - started:.1f}s: {exc}", flush=True)
    """
)


def test_first_failure_is_reported_promptly_while_others_stall(s3_env, stalled_endpoint, tmp_path):
    src = _files(tmp_path / "src")
    cmd = [sys.executable, "-c", _CHILD, str(src)]
    code, took, output = _run_and_wait(cmd, _env(s3_env, stalled_endpoint), wait=15)
    assert code is not None, "a failed file was not reported within 15 s (the job waits on stalled transfers)"
    assert "vanished" in output and took < 10, output[-500:]
