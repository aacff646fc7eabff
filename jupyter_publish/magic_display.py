"""What the magics show: result cards and previews, panels, progress notes, and the
one-line text of a ``%%publish`` run that did not go to plan.

Only the magics import this module (it imports IPython). The wording lives here so the
cell runner reports facts (:mod:`jupyter_publish.cellrun`) and the magics decide nothing
about how they read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from .cellrun import CellFailed, cell_traceback, describe, is_cell_code


def show_result(result: Any, out: str | None, namespace: MutableMapping[str, Any]) -> None:
    """The result's card, and the result in notebook variable ``out`` if asked."""
    if out:
        namespace[out] = result
    display(result)


def show_fetched(result: Any, preview: bool) -> None:
    """A fetch's preview, or one line per fetch."""
    if preview:
        display(result)
    else:
        print(str(result))


def show_panel(factory: str, **kwargs: Any) -> None:
    """A panel from ``jupyter_publish.widgets`` (imported only when asked for)."""
    try:
        from . import widgets

        make = getattr(widgets, factory)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--ui needs jupyter_publish.widgets.{factory} (ipywidgets): {exc}") from None
    display(make(**kwargs))


class Notes:
    """Where progress notes go: the stdout of the moment the cell started (never the
    tee into OUTPUT/stdout), so a sync round's line sits in time order among the cell's
    own output. In a kernel that stream sends each write under the cell's message
    header; the sync thread runs in the cell's context (:class:`~jupyter_publish.sync.Syncer`),
    so its lines land in this cell, not in whichever cell runs next.
    """

    def __init__(self, shell: Any, quiet: bool) -> None:
        self.quiet = quiet
        self._stream = sys.stdout

    def __call__(self, text: str) -> None:
        if self.quiet:
            return
        self._stream.write(f"jupyter-publish: {text}\n")
        self._stream.flush()


# -- a %%publish run, in one line --------------------------------------------------------


def where(error: BaseException) -> str:
    """`` at line N`` of the cell as shown (the ``%%publish`` line is line 1), when the
    traceback says so."""
    line = getattr(error, "lineno", None)  # SyntaxError
    tb = error.__traceback__
    while tb is not None:
        if is_cell_code(tb.tb_frame.f_code.co_filename):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


def show_failure(message: str, error: BaseException, folder: Path | None) -> None:
    """The failed cell's traceback one click away, folded under what happened and a link
    to the kept outputs. HTML only: a terminal shows the one-line UsageError alone."""
    from .cards import failure_card
    from .redact import scrub

    kept = None
    if folder is not None and folder.exists():
        kept = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
    display({"text/html": failure_card(message, scrub(cell_traceback(error)), kept)}, raw=True)


def keep_record(out: str | None, record: dict[str, Any], namespace: MutableMapping[str, Any]) -> None:
    """A failed job's record (the ledger's row, ``outputs``: where they are kept) in ``out``."""
    if out:
        namespace[out] = record


def cell_failed(failure: CellFailed) -> str:
    error = failure.error
    return (
        f"cell failed{where(error)} ({describe(error)}); nothing was published — job "
        f"{failure.job_id} recorded as failed; outputs and traceback kept in {failure.folder}; "
        "use --publish-on-error to publish anyway"
    )


def published_anyway(error: BaseException, job_id: str) -> str:
    return (
        f"cell failed{where(error)} ({describe(error)}); published anyway as job {job_id} "
        "(--publish-on-error), the traceback in its stderr"
    )


NOTHING_TO_PUBLISH = (
    "nothing to publish: the cell wrote no files to OUTPUT and printed nothing "
    "(use --optional if that can happen)"
)
NOTHING_TO_PUBLISH_NOTE = (
    "jupyter-publish: nothing to publish (--optional): the cell wrote no files to OUTPUT and printed nothing"
)


def outputs_kept(reason: str, folder: Path) -> str:
    """``reason`` (one line) why the publish failed, and how to publish the kept outputs."""
    return (
        f"{reason} — the cell's outputs are kept in {folder}: publish them with %publish {folder} --to DEST"
    )
