"""Error text on one line: what a notebook, a CLI or a ledger row shows of a failure.

One copy for the whole package: every edge (magics, widgets, the CLI) and every backend
(a server's reply, a library's message that lists what it tried one per line) collapses
text the same way, so a traceback-like blob never reaches the user.
"""

from __future__ import annotations

import re

from .redact import scrub as _scrub

__all__ = ["describe", "one_line", "printable"]


def one_line(value: object, limit: int | None = None, *, scrub: bool = False) -> str:
    """``value`` (an exception or any text) with its whitespace collapsed to single spaces.

    An exception with no message gives its class name. ``limit`` cuts the line with an
    ellipsis so it stays that many characters; ``scrub`` removes secrets first (text
    from a user's cell or a server may quote a URL with its credentials).
    """
    text = str(value)
    if scrub:
        text = _scrub(text)
    line = " ".join(text.split())
    if not line and isinstance(value, BaseException):
        line = type(value).__name__
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def describe(exc: BaseException, limit: int = 200, *, scrub: bool = False) -> str:
    """``ZeroDivisionError: division by zero``: the class and message, on one line."""
    detail = one_line(str(exc), scrub=scrub)
    return one_line(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__, limit)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (ESC starts a terminal's commands) and the bidirectional marks and
overrides that reorder what a terminal shows."""


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every control character and bidi override
    written as its escape (``\\x1b``), so a shared catalog record (anyone who may write
    to the catalog writes one) cannot clear the screen, erase the rows above, or reorder
    what a colleague sees."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group(0))[1:-1], text) if _UNPRINTABLE.search(text) else text
