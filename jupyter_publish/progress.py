"""Progress bars that appear only when they help.

tqdm.auto shows a widget in Jupyter and text in a terminal; bars stay off for small
transfers, under CI, with ``quiet=True`` or ``JUPYTER_PUBLISH_QUIET=1``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from . import config

MIN_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def progress_bar(
    total: int | None, description: str, *, quiet: bool | None = None
) -> Iterator[Callable[[int], None] | None]:
    """Yield an ``update(nbytes)`` callback, or None when no bar should show."""
    if quiet is None:
        quiet = config.quiet_by_default()
    if quiet or (total is not None and total < MIN_BYTES):
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()
