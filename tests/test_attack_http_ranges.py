"""Adversarial HTTP servers on 127.0.0.1 for ranged fetches.

* A server that says ``Accept-Ranges: bytes`` on HEAD but answers every ranged GET with
  ``200`` and the whole body: each 8 MiB range then downloads everything before it too
  (``HttpBackend.read`` skips ``offset`` bytes), so a fetch costs O(size^2 / 8 MiB):
  4.5x the file for 64 MiB, ~66x for 1 GiB.
* A file that grew between the HEAD and the GETs (a log still being written): the ranged
  path asks only for the HEAD's length and places a silently truncated file, while the
  one-stream path refuses the size mismatch.
"""

from __future__ import annotations

import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import jupyter_publish as jp

MiB = 1024 * 1024


class _Server:
    def __init__(self, data: bytes, *, ignore_range: bool = False, head_size: int | None = None) -> None:
        self.data, self.sent = data, 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", str(head_size if head_size is not None else len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_GET(self):
                match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if ignore_range or not match:
                    body, status = data, 200
                else:
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else len(data) - 1
                    body, status = data[start : end + 1], 206
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                view = memoryview(body)
                try:
                    for at in range(0, len(body), 256 * 1024):
                        piece = view[at : at + 256 * 1024]
                        self.wfile.write(piece)
                        with outer.lock:
                            outer.sent += len(piece)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/file.bin"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(data: bytes, **kw) -> _Server:
        servers.append(_Server(data, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_server_that_ignores_range_is_not_downloaded_quadratically(serve, tmp_path):
    data = os.urandom(64 * MiB)
    server = serve(data, ignore_range=True)
    fetched = jp.fetch(server.url, tmp_path / "back")
    same = (tmp_path / "back" / "file.bin").read_bytes() == data
    assert same and not fetched.verified
    # One full body is the least a 200 costs; a few MiB of socket buffers on top are fine.
    sent, limit = server.sent, 2 * len(data)
    assert sent <= limit, f"served {sent / MiB:.0f} MiB for a 64 MiB file"


def test_file_longer_than_its_head_is_not_silently_truncated(serve, tmp_path):
    data = os.urandom(40 * MiB)
    server = serve(data, head_size=len(data) - 3 * MiB)  # it grew after the HEAD
    try:
        jp.fetch(server.url, tmp_path / "back")
    except jp.PublishError:
        return  # refusing the mismatch (as the one-stream path does) is fine
    got, want = (tmp_path / "back" / "file.bin").stat().st_size, len(data)
    assert got == want, f"placed a truncated file: {got} of {want} bytes"
