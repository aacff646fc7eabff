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
