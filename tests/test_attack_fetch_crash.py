"""Adversarial: a fetch killed (kill -9) mid-way must resume to a verified file.

A ranged download pwrites later ranges before range 0 is hashed, and the ``.ok`` marker is
only written once the first in-order range is hashed. If the process dies in that window
the part file is longer than its valid prefix and has no marker, so the next fetch
"resumes" from the end of that file, hashing holes of zeros as if they were data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jupyter_publish as jp

MiB = 1024 * 1024

_CHILD = textwrap.dedent(
    """
    import os, sys, threading, time
    import jupyter_publish as jp
    from jupyter_publish.backends import s3

    original = s3.S3Backend.read
    def read(self, location, offset=0, length=None):
        # Range 0 and the last range stall after their first chunk (slow connections);
        # the others complete.
        inner = original(self, location, offset, length)
        if offset not in (0, 32 * 1024 * 1024):
            return inner
        def stalling():
            chunks = iter(inner)
            yield next(chunks)
            time.sleep(600)
            yield from chunks
        return stalling()
    s3.S3Backend.read = read

    part = sys.argv[2]
    def killer():
        # Die like kill -9 as soon as the middle ranges are on disk.
        while True:
            try:
                if os.stat(part).st_size >= 32 * 1024 * 1024:
                    time.sleep(0.3)
                    os._exit(9)
            except FileNotFoundError:
                pass
            time.sleep(0.02)
    threading.Thread(target=killer, daemon=True).start()
    jp.fetch(sys.argv[1], sys.argv[3], max_concurrency=8)
    """
)


def test_fetch_killed_before_first_marker_resumes_verified(s3_env, s3_bucket, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(40 * MiB)
    (src / "big.bin").write_bytes(data)
    result = jp.publish(src, f"s3://{s3_bucket}/crash/", archive=False, endpoint=s3_env.endpoint)
    dest = tmp_path / "back"
    part = tmp_path / ".back.jp-partial" / "objects" / "big.bin"
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, result.job_id, str(part), str(dest)],
        capture_output=True, text=True, timeout=60, env=os.environ,
    )  # fmt: skip
    assert child.returncode == 9, child.stderr[-2000:]
    assert part.exists()  # the crash left a partial download behind
    # The next fetch must end verified with the right bytes (not an IntegrityError).
    back = jp.fetch(result.job_id, dest)
    assert back.verified
    assert (dest / "big.bin").read_bytes() == data
