"""Compact views of the ledger's tables, for people: the value stays the full DataFrame.

``%jobs`` and ``%cids`` return DataFrames of 20-odd columns (URIs, full CIDs, sha256,
provenance) that a notebook draws wider than its cell and a terminal wraps into noise.
So they return a :class:`CompactFrame`: a DataFrame in every way (``_``, ``--out``,
``.to_csv()``, every column), whose *display* is a short table — short job ID kept on one
line, name, status, destination, files, size, time; hashes shortened with the full value
in a tooltip; missing values blank instead of ``<NA>``. Anything derived from it
(``frame[...]``, ``.copy()``) is a plain DataFrame again, shown in full.

Plain HTML and text: no IPython import (the magics and the jobs browser use it).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .ids import short_job_id
from .sizes import human_size


@dataclass(frozen=True)
class Column:
    """One column of a compact view: where its text comes from, and how it may wrap."""

    label: str
    source: str
    text: Callable[[Any], str]
    title: Callable[[Any], str] = lambda value: ""
    """The tooltip (the full value of a shortened one)."""
    nowrap: bool = False
    numeric: bool = False


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _short_id(value: Any) -> str:
    return "" if _missing(value) else short_job_id(str(value))


def _size(value: Any) -> str:
    return "" if _missing(value) else human_size(int(value))


def _count(value: Any) -> str:
    return "" if _missing(value) else str(int(value))


def _time(value: Any) -> str:
    if _missing(value):
        return ""
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


def _cut(keep: int) -> Callable[[Any], str]:
    """The first ``keep`` characters and an ellipsis (a hash is told apart by its start)."""

    def cut(value: Any) -> str:
        text = _plain(value)
        return text if len(text) <= keep + 1 else text[:keep] + "…"

    return cut


def _middle(keep: int) -> Callable[[Any], str]:
    """A CID's head (its version and codec) and tail: ``bafybeigdy…r3tcmq``."""

    def cut(value: Any) -> str:
        text = _plain(value)
        return text if len(text) <= keep + 1 else f"{text[: keep - 6]}…{text[-6:]}"

    return cut


def _full(value: Any) -> str:
    return _plain(value)


def _destination(value: Any) -> str:
    return _middle(40)(value)


JOB_VIEW = (
    Column("job", "job_id", _short_id, _full, nowrap=True),
    Column("name", "name", _plain),
    Column("status", "status", _plain, nowrap=True),
    Column("destination", "destination", _destination, _full),
    Column("files", "n_files", _count, nowrap=True, numeric=True),
    Column("size", "total_size", _size, nowrap=True, numeric=True),
    Column("time (UTC)", "created_at", _time, nowrap=True),
)
"""What ``%jobs`` shows of each job (the frame keeps every column)."""

FILE_VIEW = (
    Column("path", "path", _plain),
    Column("kind", "kind", _plain, nowrap=True),
    Column("size", "size", _size, nowrap=True, numeric=True),
    Column("CID", "cid", _plain),  # whole (people copy it); wraps where the cell is narrow
    Column("sha256", "sha256", _cut(12), _full, nowrap=True),
)
"""One job's files, as the jobs browser lists them."""

CID_VIEW = (
    Column("job", "job_id", _short_id, _full, nowrap=True),
    *FILE_VIEW,
    Column("destination", "destination", _destination, _full),
)
"""What ``%cids`` shows of each file, folder and archive."""


def _cells(frame: pd.DataFrame, view: Sequence[Column]) -> tuple[list[Column], list[list[tuple[str, str]]]]:
    columns = [c for c in view if c.source in frame.columns]
    rows = [
        [(c.text(value), c.title(value)) for c, value in zip(columns, record, strict=True)]
        for record in frame[[c.source for c in columns]].itertuples(index=False, name=None)
    ]
    return columns, rows


_CELL = "padding:2px 8px;vertical-align:top;"
_HEAD = "border-bottom:1px solid var(--jp-border-color1,#bbb);"


def _attrs(column: Column, head: bool = False) -> str:
    """Inline styles, not a <style> block: an Output widget's HTML (the jobs browser) is
    sanitized, which drops <style> but keeps ``style``; and inline beats JupyterLab's
    right-aligned table cells."""
    style = _CELL + (_HEAD if head else "")
    style += "text-align:right;" if column.numeric else "text-align:left;"
    style += "white-space:nowrap;" if column.nowrap else "overflow-wrap:anywhere;"
    names = [n for n, on in (("nowrap", column.nowrap), ("num", column.numeric)) if on]
    classes = f' class="{" ".join(names)}"' if names else ""
    return f'{classes} style="{style}"'


def html_table(frame: pd.DataFrame, view: Sequence[Column], caption: str = "") -> str:
    """``frame`` as a compact HTML table: every value escaped, shortened ones with a tooltip."""
    columns, rows = _cells(frame, view)
    head = "".join(f"<th{_attrs(c, head=True)}>{html.escape(c.label)}</th>" for c in columns)

    def cell(column: Column, text: str, title: str) -> str:
        tip = f' title="{html.escape(title)}"' if title and title != text else ""
        return f"<td{_attrs(column)}{tip}>{html.escape(text)}</td>"

    body = "".join(
        "<tr>" + "".join(cell(c, *pair) for c, pair in zip(columns, row, strict=True)) + "</tr>"
        for row in rows
    )
    note = f"<div class='jupyter-publish-table-note'><small>{html.escape(caption)}</small></div>"
    foot = note if caption else ""
    return (
        "<div class='jupyter-publish-table-wrap' style='max-width:100%;overflow-x:auto'>"
        "<table class='jupyter-publish-table' style='border-collapse:collapse;max-width:100%;"
        f"font-size:12px;margin:0'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"</div>{foot}"
    )


def text_table(frame: pd.DataFrame, view: Sequence[Column], caption: str = "") -> str:
    """The same table as aligned text (a terminal's IPython), fitted to the terminal as
    ``jupyter-publish jobs`` fits its table: the columns that may wrap are cut first."""
    from . import text_table as text

    columns, rows = _cells(frame, view)
    layout = [text.Column(c.label, cap=120, shrinks=0 if c.nowrap else 1, right=c.numeric) for c in columns]
    table = text.render(layout, [[cell for cell, _ in row] for row in rows], text.terminal_width())
    return f"{table}\n{caption}" if caption else table


class CompactFrame(pd.DataFrame):
    """A DataFrame shown compactly (see the module doc); in every other way the full frame."""

    _metadata = ["_view"]  # noqa: RUF012 - pandas' own declaration: names kept by __finalize__
    _view: tuple[Column, ...] = ()

    @property
    def _constructor(self) -> Callable[..., pd.DataFrame]:
        return pd.DataFrame  # anything derived is a plain, fully shown DataFrame

    def _caption(self) -> str:
        rows = "1 row" if len(self) == 1 else f"{len(self)} rows"
        return f"{rows}, {len(self.columns)} columns in the value (this view shows {len(self._shown())})"

    def _shown(self) -> list[Column]:
        return [c for c in self._view if c.source in self.columns]

    def _repr_html_(self) -> str:
        return html_table(self, self._view, self._caption())

    def __repr__(self) -> str:
        return text_table(self, self._view, self._caption())

    def full(self) -> pd.DataFrame:
        """The same data as a plain DataFrame (shown with every column)."""
        return pd.DataFrame(self)


def compact(frame: pd.DataFrame, view: Sequence[Column]) -> CompactFrame:
    """``frame`` (not copied) displayed through ``view``."""
    shown = CompactFrame(frame)
    shown._view = tuple(view)
    return shown


def _rounds(value: Any) -> str:
    return "" if _missing(value) or not value else str(int(value))


ROUNDS_COLUMN = Column("rounds", "rounds", _rounds, nowrap=True, numeric=True)
"""A ``--sync-every`` job's sync rounds, shown after its files when a listed job had any
(blank for the others): the count is what tells a synced cell's one row apart."""


def compact_jobs(frame: pd.DataFrame) -> CompactFrame:
    view: tuple[Column, ...] = JOB_VIEW
    if "rounds" in frame.columns and (pd.to_numeric(frame["rounds"], errors="coerce").fillna(0) > 0).any():
        at = [c.source for c in JOB_VIEW].index("n_files") + 1
        view = (*JOB_VIEW[:at], ROUNDS_COLUMN, *JOB_VIEW[at:])
    return compact(frame, view)


def compact_cids(frame: pd.DataFrame) -> CompactFrame:
    return compact(frame, CID_VIEW)
