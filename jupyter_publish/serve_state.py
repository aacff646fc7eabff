"""Where a running ``jupyter-publish serve`` says it is: ``<home>/serve.json``.

The server writes it and the local backend reads it (a local publish links to the
server when one runs), so neither module imports the other.
"""

from __future__ import annotations

import hmac
import json
import os
import urllib.parse
from pathlib import Path

from . import config

__all__ = ["home_token", "running_server_url", "served_file", "state_file"]


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


def home_token() -> str | None:
    """This home's serve token, if one was made (read here, never made): the secret in
    every link ``serve`` hands out, which no catalog or crate may carry."""
    try:
        token = (config.home() / "serve-token").read_text().strip()
    except OSError:
        return None
    return token if len(token) >= 32 else None


def served_file(url: str) -> tuple[str, str] | None:
    """``(job ID, path)`` when ``url`` is a link this home's ``serve`` hands out
    (``http://127.0.0.1:PORT/TOKEN/JOB/PATH`` or ``…/JOB/PATH?token=TOKEN``), running or
    not: the token, this home's secret, is what says so. Else None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    token = home_token()
    if token is None:
        return None
    given = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    path = parts.path.lstrip("/")
    if not given:
        given, _, path = path.partition("/")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return None
    job_id, _, name = urllib.parse.unquote(path).partition("/")
    return (job_id, name) if job_id and name and not name.endswith("/") else None
