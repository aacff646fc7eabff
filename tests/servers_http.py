"""Fixtures for real HTTP upload servers: nginx (WebDAV and transfer.sh style) on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_publish.testing.nginx import Nginx


def _serve(**options: Any) -> Iterator[Nginx]:
    """Start one nginx for the session, fail clearly if nginx is missing, stop it by PID after."""
    try:
        server = Nginx(**options)
    except RuntimeError as exc:  # nginx or the lua module not installed
        pytest.fail(str(exc))
    with server.serving():
        yield server


@pytest.fixture(scope="session")
def nginx_dav() -> Iterator[Nginx]:
    """WebDAV PUT/GET, no size limit: PUT answers 201 with ``Location:``."""
    yield from _serve(mode="dav")


@pytest.fixture(scope="session")
def nginx_transfer() -> Iterator[Nginx]:
    """transfer.sh style: PUT /NAME or POST a ``file`` form, the download URL in the body."""
    yield from _serve(mode="transfer")


@pytest.fixture(scope="session")
def nginx_small() -> Iterator[Nginx]:
    """WebDAV with ``client_max_body_size 1k``: anything bigger gets 413."""
    yield from _serve(mode="dav", max_body="1k")


@pytest.fixture(scope="session")
def nginx_auth() -> Iterator[Nginx]:
    """WebDAV behind basic auth; credentials in ``auth_user`` / ``auth_password``."""
    yield from _serve(mode="dav", auth_user="publisher", auth_password=secrets.token_urlsafe(18))
