"""Cheap checks of a destination before any work: a cell may run for an hour first.

Each backend declares its own :meth:`~jupyter_publish.backends.base.BackendBase.preflight`
(credentials resolvable, endpoint or API reachable, option values valid); this module
holds what several of them share and the one entry point the front doors call.
Nothing here writes to a store or needs more than the right to connect.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from .errors import BackendError

REACH_TIMEOUT = 5.0
"""Seconds a TCP connect may take before the destination counts as unreachable."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def preflight(dest: object) -> None:
    """Run the destination's backend's checks; a one-line PublishError if one fails."""
    from .backends import backend_class
    from .backends.base import Destination

    if not isinstance(dest, Destination):
        return
    check = getattr(backend_class(dest.scheme), "preflight", None)
    if callable(check):
        check(dest)


def _proxy_for(url: str) -> str | None:
    """The proxy (from the environment) that carries the requests to ``url``, if any."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def check_reachable(url: str, what: str, hint: str = "", timeout: float = REACH_TIMEOUT) -> None:
    """Connect to ``url``'s host and port and hear back (:func:`_hear_back`), or raise BackendError
    ``cannot reach WHAT at HOST:PORT…`` in one line. When a proxy carries the requests,
    the proxy is what must answer (a direct connect proves nothing; a dead proxy fails
    the publish after the cell ran as surely as a dead store)."""
    proxy = _proxy_for(url)
    if proxy is not None:
        _check(proxy, f"the proxy for {what}", ": check HTTP_PROXY / HTTPS_PROXY / NO_PROXY", timeout)
    else:
        _check(url, what, hint, timeout)


def _check(url: str, what: str, hint: str, timeout: float) -> None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        return
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return  # a malformed port is the backend's own option check to report
    deadline = time.monotonic() + timeout
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        sock = _connect(host, port, timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer in {timeout:g} s"
        raise BackendError(f"cannot reach {what} at {where} ({reason}){hint}") from None
    with sock:
        try:
            _hear_back(sock, parts.scheme.lower(), where, deadline)
        except OSError:
            reason = f"it accepts connections but does not answer in {timeout:g} s"
            raise BackendError(f"cannot reach {what} at {where} ({reason}){hint}") from None


def _hear_back(sock: socket.socket, scheme: str, where: str, deadline: float) -> None:
    """Any answer to one anonymous request: a server that accepts connections but never
    answers (a hung process, a tarpit) passes a connect, and the publish would wait out
    its timeouts and retries after the cell ran. ``HEAD /``, or a TLS handshake (its
    certificate is the publish's to judge); no credential is sent."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    if scheme not in ("http", "https"):
        return  # a SOCKS proxy, say: its connect is what there is to check
    if scheme == "https":
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(sock, server_hostname=where.rpartition(":")[0].strip("[]")):
                return
        except ssl.SSLError:
            return  # it answered, in TLS of its own
    sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {where}\r\nConnection: close\r\n\r\n".encode())
    sock.recv(1)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connection made within ``timeout`` in all, the name's lookup included: a socket
    timeout does not cover ``getaddrinfo``, which with no network (a laptop offline, a
    resolver that never answers) can take minutes, and the cell would wait that long."""
    deadline = time.monotonic() + timeout
    found: list[tuple[Any, ...]] = []
    failed: list[OSError] = []

    def resolve() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    lookup = threading.Thread(target=resolve, name="jupyter-publish-resolve", daemon=True)
    lookup.start()
    lookup.join(timeout)
    if lookup.is_alive():
        raise socket.gaierror(f"name not resolved in {timeout:g} s")
    if failed:
        raise failed[0]
    error = OSError("the name has no address")
    for family, kind, proto, _name, address in found:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error
