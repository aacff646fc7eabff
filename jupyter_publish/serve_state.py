"""Where a running ``jupyter-publish serve`` says it is: ``<home>/serve.json``.

The server writes it and the local backend reads it (a local publish links to the
server when one runs), so neither module imports the other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import config

__all__ = ["running_server_url", "state_file"]


def state_file() -> Path:
    return config.home() / "serve.json"


def running_server_url() -> str | None:
    """The base URL of a live ``jupyter-publish serve`` for this home, if any."""
    try:
        state = json.loads(state_file().read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return str(state["url"])
