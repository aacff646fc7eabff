"""A plain-text table that fits a terminal: what ``jupyter-publish jobs`` prints.

Each column is as wide as its widest cell, up to a cap; when the line is still too wide
the columns that read well cut (an error, a URI, a name) give way first, each cut cell
ending in ``…``. ``--json`` keeps every value whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from .text import one_line

MIN_WIDTH = 60
GAP = "  "


@dataclass(frozen=True)
class Column:
    title: str
    cap: int = 40
    """Never wider than this."""
    shrinks: int = 0
    """0: keeps its width; otherwise the order in which columns give way (1 first)."""
    least: int = 8
    right: bool = False


def terminal_width() -> int:
    """The terminal's width, ``$COLUMNS``, else 120 (a pipe or a CI log)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(MIN_WIDTH, int(os.environ["COLUMNS"]))
    return max(MIN_WIDTH, shutil.get_terminal_size((120, 24)).columns)


def cut(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters (``…`` marks a cut)."""
    return one_line(text, max(1, width))


def _shown(value: str) -> str:
    """``value`` on one line with control characters as ``?``: a name from a shared
    catalog is someone else's text, and an escape sequence in it would drive the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in one_line(value))


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> str:
    """The table's lines, none longer than ``width`` if the shrinkable columns allow."""
    cells = [[_shown(value) for value in row] for row in rows]
    widths = [
        min(col.cap, max([len(col.title), *(len(row[i]) for row in cells)])) for i, col in enumerate(columns)
    ]
    excess = sum(widths) + len(GAP) * (len(columns) - 1) - width
    order = sorted((i for i, c in enumerate(columns) if c.shrinks), key=lambda i: columns[i].shrinks)
    for floor in (lambda c: max(c.least, len(c.title)), lambda c: len(c.title)):  # then past `least`
        for i in order:
            give = min(max(excess, 0), max(0, widths[i] - floor(columns[i])))
            widths[i] -= give
            excess -= give

    def line(values: Sequence[str]) -> str:
        parts = [
            cut(v, w).rjust(w) if col.right else cut(v, w).ljust(w)
            for col, v, w in zip(columns, values, widths, strict=True)
        ]
        return GAP.join(parts).rstrip()

    return "\n".join([line([c.title for c in columns]), *(line(row) for row in cells)])
