"""Byte sizes: the one read chunk every stream uses, and how a size is shown to people."""

from __future__ import annotations

__all__ = ["CHUNK", "MiB", "counted", "human_size"]

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
