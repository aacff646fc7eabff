"""Backends by URI scheme, imported only when first used.

Modelled on fsspec's protocol registry: a scheme maps to a dotted class path, so
``import jupyter_publish`` never imports boto3 or httpx. Third-party packages add
schemes with :func:`register_backend` or the ``jupyter_publish.backends`` entry point
group.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import DestinationError
from .base import Backend, BatchBackend, ObjectBackend, RemoteObject, StoredObject, StoreOutcome, Upload

_REGISTRY: dict[str, str | type[Any]] = {
    "local": "jupyter_publish.backends.local.LocalBackend",
    "s3": "jupyter_publish.backends.s3.S3Backend",
    "ipfs": "jupyter_publish.backends.ipfs.IpfsBackend",
    "http": "jupyter_publish.backends.http.HttpBackend",
    "https": "jupyter_publish.backends.http.HttpBackend",
}


def register_backend(scheme: str, backend: str | type[Any], *, clobber: bool = False) -> None:
    """Make ``scheme://`` references use ``backend`` (a class or its dotted path)."""
    if scheme in _REGISTRY and not clobber:
        raise ValueError(f"scheme {scheme!r} is already registered; pass clobber=True")
    _REGISTRY[scheme] = backend


def _entry_point_backend(scheme: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="jupyter_publish.backends"):
        if ep.name == scheme:
            return ep.value.replace(":", ".")
    return None


def backend_class(scheme: str) -> type[Any]:
    """The backend class for ``scheme``, importing it on first use."""
    target = _REGISTRY.get(scheme) or _entry_point_backend(scheme)
    if target is None:
        known = ", ".join(sorted(_REGISTRY))
        raise DestinationError(f"no backend for {scheme!r}: known schemes are {known}")
    if isinstance(target, str):
        module_name, _, class_name = target.rpartition(".")
        target = getattr(importlib.import_module(module_name), class_name)
        _REGISTRY[scheme] = target
    return target  # type: ignore[return-value]


def known_schemes() -> list[str]:
    return sorted(_REGISTRY)


__all__ = [
    "Backend",
    "BatchBackend",
    "ObjectBackend",
    "RemoteObject",
    "StoreOutcome",
    "StoredObject",
    "Upload",
    "backend_class",
    "known_schemes",
    "register_backend",
]
