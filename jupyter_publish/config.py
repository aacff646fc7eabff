"""Where jupyter-publish keeps its state, and small settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "JUPYTER_PUBLISH_HOME"
QUIET_ENV = "JUPYTER_PUBLISH_QUIET"


def home() -> Path:
    """The store and ledger folder: ``$JUPYTER_PUBLISH_HOME`` or the user's data dir."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        path = Path(configured).expanduser()
    else:
        from platformdirs import user_data_path

        path = user_data_path("jupyter-publish", appauthor=False)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from .errors import SourceError

        raise SourceError(
            f"cannot create the jupyter-publish home {path}: {exc.strerror or exc}; "
            f"set {HOME_ENV} to a writable folder"
        ) from None
    return path


def quiet_by_default() -> bool:
    """Progress bars are off under CI or when asked, on otherwise."""
    if os.environ.get(QUIET_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return True
    return bool(os.environ.get("CI"))


IDLE_TIMEOUT_ENV = "JUPYTER_PUBLISH_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds a transfer may go without moving a byte before it is called stalled."""
RETRIES_ENV = "JUPYTER_PUBLISH_RETRIES"
DEFAULT_RETRIES = 4
"""Extra attempts after a transient fault (so 5 in all), with exponential backoff."""


def _number(name: str, default: float, low: float, high: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also refuses nan
        from .errors import DestinationError

        raise DestinationError(f"{name} must be a number from {low:g} to {high:g}, not {text!r}")
    return value


def idle_timeout() -> float:
    """``$JUPYTER_PUBLISH_IDLE_TIMEOUT`` seconds (0.1–3600), default 60."""
    return _number(IDLE_TIMEOUT_ENV, DEFAULT_IDLE_TIMEOUT, 0.1, 3600)


def retries() -> int:
    """``$JUPYTER_PUBLISH_RETRIES`` extra attempts after a transient fault (0–20), default 4."""
    value = _number(RETRIES_ENV, float(DEFAULT_RETRIES), 0, 20)
    if not value.is_integer():
        from .errors import DestinationError

        raise DestinationError(f"{RETRIES_ENV} must be a whole number, not {value:g}")
    return int(value)
