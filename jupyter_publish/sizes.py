"""Byte sizes: the one read chunk every stream uses, and how a size is shown to people."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CHUNK", "MiB", "counted", "file_count", "human_size"]

MiB = 1024 * 1024
CHUNK = MiB
"""Bytes per read or write of a streamed file: large enough that a system call per chunk
costs nothing next to hashing it, small enough that a few in flight keep memory flat."""


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 GiB``: binary units, one decimal past bytes."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,024 files``: a count as a sentence says it."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


_BUNDLE_NAMES = {"stdout": "stdout", "stderr": "stderr", "exitCode": "exit code"}
"""What a ``%%publish`` cell (or a Bacalhau job) adds to its outputs, as a count names it."""


def file_count(paths: Iterable[str]) -> str:
    """``4 files + stdout, stderr, exit code`` for a job's outputs, ``7 files`` otherwise:
    the files the cell made are counted, what every job adds is named."""
    names = list(paths)
    if not set(_BUNDLE_NAMES) <= set(names):
        return counted(len(names), "file")
    made = len(names) - len(_BUNDLE_NAMES)
    added = ", ".join(_BUNDLE_NAMES.values())
    return f"{counted(made, 'file')} + {added}" if made else added
