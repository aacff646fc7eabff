"""Measurements shared by the memory tests and the benchmarks."""

from __future__ import annotations

import hashlib
import os

from jupyter_publish.sizes import MiB


def peak_rss_kb() -> int:
    """This process's own peak RSS in KiB.

    ``VmHWM`` rather than ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts at the
    peak of the process it was forked from (pytest, say), which may be far larger.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, streamed in 1 MiB reads (an independent check of our hashing)."""
    digest = hashlib.sha256()
    buffer = bytearray(MiB)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()
