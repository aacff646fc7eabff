"""A folder as data, to compare what a fetch gave back with what was published."""

from __future__ import annotations

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
