"""The sidecar manifest of a plain S3 publish is read like every other object (review, item 1).

A connection cut while the body of ``.jupyter-publish.json`` arrives used to raise
botocore's ResponseStreamingError straight through ``fetch`` (a traceback at the CLI, no
retry). Now the read is retried with backoff and the fetch ends verified; a manifest
read that breaks off on every try is one line.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import CHUNK, FaultProxy

import jupyter_publish as jp

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_GET = b"/.jupyter-publish.json HTTP/1.1"


class ManifestCut(FaultProxy):
    """Forwards everything, but cuts the connection 100 bytes into the body of each
    response to a GET of the sidecar manifest (``times`` times)."""

    def __init__(self, port: int, times: int = 1) -> None:
        super().__init__(port)
        self.times, self.cuts = times, 0
        self._armed: set[int] = set()

    def _pump(self, index: int, direction: str, src: Any, dst: Any, pair: Any) -> None:  # type: ignore[override]
        seen = b""
        try:
            while data := src.recv(CHUNK):
                if direction == "up":
                    if data.startswith(b"GET ") and MANIFEST_GET in data:
                        with self._lock:
                            if self.cuts < self.times:
                                self._armed.add(index)  # before the request goes: no race
                    dst.sendall(data)
                    continue
                with self._lock:
                    armed = index in self._armed
                if not armed:
                    dst.sendall(data)
                    continue
                seen += data
                end = seen.find(b"\r\n\r\n")
                if end < 0 or len(seen) < end + 4 + 100:
                    continue  # held back until the cut point has arrived
                dst.sendall(seen[: end + 4 + 100])
                with self._lock:
                    self._armed.discard(index)
                    self.cuts += 1
                break
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture(autouse=True)
def _policy(monkeypatch):
    monkeypatch.setenv("JUPYTER_PUBLISH_RETRIES", "2")
    monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", "5")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):  # a manifest of a few KiB: the cut falls inside its body
        (src / f"file{i:02d}.txt").write_bytes(os.urandom(500 + i))
    return src


def _publish(s3_env, s3_bucket, source, proxy) -> Any:
    to = f"s3://{s3_bucket}/plain{time.monotonic_ns()}/"
    return jp.publish(source, to, archive=False, endpoint=proxy.url)


def test_a_manifest_cut_mid_body_is_read_again_and_the_fetch_is_verified(s3_env, s3_bucket, source, tmp_path):
    with ManifestCut(s3_env.ports["s3"], times=1) as proxy:
        result = _publish(s3_env, s3_bucket, source, proxy)
        fetched = jp.fetch(result.uri, tmp_path / "back", endpoint=proxy.url)
        assert proxy.cuts == 1
    assert fetched.verified
    assert len(fetched.files) == 12
    assert all(f.verified_against for f in fetched.files)
    for f in fetched.files:
        assert f.path.read_bytes() == (source / f.path.name).read_bytes()


def test_a_manifest_read_cut_every_time_is_one_line_at_the_cli(s3_env, s3_bucket, source, tmp_path):
    with ManifestCut(s3_env.ports["s3"], times=1) as proxy:
        result = _publish(s3_env, s3_bucket, source, proxy)
        proxy.times = 1000
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "jupyter_publish.cli", "fetch", result.uri]
        command += ["--to", str(tmp_path / "back"), "--endpoint", proxy.url]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        cuts = proxy.cuts
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert ".jupyter-publish.json" in lines[0] and "gave up after 3 attempts" in lines[0], lines[0]
    assert cuts == 3  # the first try and two retries ($JUPYTER_PUBLISH_RETRIES=2)
