"""An in-process hook: "a job's ledger row changed", for views that list jobs.

The jobs browser lists the ledger; a job published in the same kernel (by a magic, the
API or the publish panel) should appear there without a Refresh click. The ledger calls
:func:`job_changed` after each write that changes what a job list shows (a job started,
published, failed, interrupted); a view subscribes with :func:`on_job_changed`.

Listeners are held weakly (a bound method through :class:`weakref.WeakMethod`), so a
view nobody holds any more is dropped, not refreshed forever. A listener that raises is
logged at debug level and never breaks the write that notified it. No IPython here.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[[str], Any]
"""Called with the job ID whose row changed, in the thread that wrote it."""

_lock = threading.Lock()
_listeners: list[weakref.ref[Any]] = []


def _ref(listener: Listener) -> weakref.ref[Any]:
    if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
        return weakref.WeakMethod(listener)
    return weakref.ref(listener)


def on_job_changed(listener: Listener) -> Callable[[], None]:
    """Call ``listener(job_id)`` after each change of a job's row; returns the unsubscriber."""
    ref = _ref(listener)
    with _lock:
        _listeners.append(ref)

    def unsubscribe() -> None:
        with _lock:
            if ref in _listeners:
                _listeners.remove(ref)

    return unsubscribe


def job_changed(job_id: str) -> None:
    """Tell every live listener that ``job_id``'s row changed (after the change is committed)."""
    with _lock:
        _listeners[:] = [ref for ref in _listeners if ref() is not None]
        live = [ref() for ref in _listeners]
    for listener in live:
        if listener is None:
            continue
        try:
            listener(job_id)
        except Exception:  # a view's trouble must never fail a publish
            log.debug("a job listener failed", exc_info=True)
