"""Folders and files as data: what a fetch gave back against what was published, and
large incompressible files to publish."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root``: files with their bytes, folders as None."""
    found: dict[str, bytes | None] = {}
    for current, dirs, files in os.walk(root):
        base = Path(current).relative_to(root)
        for name in dirs:
            found[(base / name).as_posix()] = None
        for name in files:
            found[(base / name).as_posix()] = (Path(current) / name).read_bytes()
    return found


def random_file(path: Path, size: int, seed: bytes = b"random") -> Path:
    """``size`` incompressible, deterministic bytes at ``path`` (a gzip archive of them is as
    large), written a MiB at a time."""
    mib = 1024 * 1024
    with open(path, "wb") as out:
        counter = 0
        while size > 0:
            block = hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(min(size, mib))
            out.write(block)
            size -= len(block)
            counter += 1
    return path
