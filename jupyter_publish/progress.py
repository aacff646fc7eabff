"""Progress bars that appear only when they help.

tqdm.auto shows a widget in Jupyter and text in a terminal; bars stay off for small
transfers, under CI, when stderr is not a terminal (outside a notebook), with
``quiet=True`` or ``JUPYTER_PUBLISH_QUIET=1``.

A caller that draws its own progress (the widgets) sets :data:`progress_listener`,
for example with :func:`listening`; it then gets ``(done, total)`` on every update,
whether or not a tqdm bar shows.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from . import config

MIN_BYTES = 8 * 1024 * 1024

Listener = Callable[[int, int | None], None]
progress_listener: ContextVar[Listener | None] = ContextVar("progress_listener", default=None)
"""Receives ``(bytes done, total or None)``; per context, so per thread."""


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send this context's progress updates to ``listener`` until the block ends."""
    token = progress_listener.set(listener)
    try:
        yield
    finally:
        progress_listener.reset(token)


@contextlib.contextmanager
def progress_bar(
    total: int | None, description: str, *, quiet: bool | None = None
) -> Iterator[Callable[[int], None] | None]:
    """Yield an ``update(nbytes)`` callback, or None when nobody wants progress."""
    listener = progress_listener.get()
    with _tqdm_bar(total, description, quiet) as bar_update:
        if listener is None and bar_update is None:
            yield None
            return
        done = 0
        lock = threading.Lock()  # transfers report from several worker threads at once

        def update(nbytes: int) -> None:
            nonlocal done
            with lock:
                done += nbytes
                now = done
                if bar_update is not None:
                    bar_update(nbytes)
            if listener is not None:
                listener(now, total)

        yield update


@contextlib.contextmanager
def _tqdm_bar(
    total: int | None, description: str, quiet: bool | None
) -> Iterator[Callable[[int], None] | None]:
    if quiet is None:
        quiet = config.quiet_by_default()
    if quiet or (total is not None and total < MIN_BYTES):
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False)

    def update(nbytes: int) -> None:
        bar.update(nbytes)

    try:
        yield update
    finally:
        bar.close()
