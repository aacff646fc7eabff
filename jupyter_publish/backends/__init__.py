"""Backends by URI scheme, imported only when first used.

Modelled on fsspec's protocol registry: a scheme maps to a dotted class path, so
``import jupyter_publish`` never imports boto3 or httpx. Third-party packages add
schemes with :func:`register_backend` or the ``jupyter_publish.backends`` entry point
group. Each class declares what the rest of the package needs to know about its scheme
(:class:`~jupyter_publish.backends.base.BackendBase`); the helpers below are how the
publisher, the fetcher and the front doors ask, so none of them names a scheme.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any, cast

from ..errors import DestinationError, RefError
from ..text import describe
from .base import (
    Backend,
    BackendBase,
    BackendOption,
    BatchBackend,
    CopiesExisting,
    CopyProof,
    CopyProver,
    Destination,
    ManifestSidecar,
    ObjectBackend,
    PublishTarget,
    RemoteObject,
    StoredObject,
    StoreOutcome,
    Upload,
)

_REGISTRY: dict[str, str | type[object]] = {
    "local": "jupyter_publish.backends.local.LocalBackend",
    "s3": "jupyter_publish.backends.s3.S3Backend",
    "ipfs": "jupyter_publish.backends.ipfs.IpfsBackend",
    "http": "jupyter_publish.backends.http.HttpBackend",
    "https": "jupyter_publish.backends.http.HttpBackend",
}
_BUILT_IN = frozenset(_REGISTRY)
DEFAULT_DESTINATION = "local"
"""Where a publish goes when no destination is given: the embedded store (no server,
no credentials)."""
_CLASSES: dict[str, type[BackendBase]] = {}
"""Imported (and, for a class not deriving from BackendBase, completed) classes by scheme."""


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")
"""A URI scheme (RFC 3986), in the lower case every lookup uses."""

RESERVED_OPTIONS = frozenset(
    {
        # keywords of publish(), begin_job(), resume() and fetch()
        "paths", "to", "preflight", "archive", "name", "pin", "cid_version", "quiet", "notebook", "ledger",
        "job_id", "max_concurrency", "compression", "skip_unreadable", "follow_symlinks", "hidden",
        "resolve_placeholders", "ref", "dest", "verify", "extract", "max_ratio", "provenance", "uses",
        "catalog", "catalog_options", "ro_crate", "license", "rounds",
        # what the command line and the magics parse besides backend options
        "command", "json", "jobs", "job", "limit", "port", "symlinks", "version", "help",
        "targets", "refs", "out", "sync_every", "optional", "publish_on_error", "ui",
        "no_preview", "no_verify", "no_extract", "preview", "fetch_dir", "default_destination", "lineage",
    }
)  # fmt: skip
"""Names a backend option cannot take: the core's own keywords and flags. A backend's
``name`` or ``jobs`` would clash with ``--name``/``--jobs`` (the command line and the
magics could not even be built) or be taken silently as the core's own keyword."""


def _checked_scheme(scheme: str) -> str:
    if not isinstance(scheme, str) or not _SCHEME.match(scheme.lower()):
        raise ValueError(f"{scheme!r} is not a URI scheme: a letter, then letters, digits, '+', '-' or '.'")
    return scheme.lower()


def register_backend(scheme: str, backend: str | type[object], *, clobber: bool = False) -> None:
    """Make ``scheme://`` references and destinations use ``backend`` (a class or its
    dotted path). The class declares the rest (:class:`BackendBase`). Schemes are case
    insensitive (``S3`` is ``s3``); a class is checked now, a dotted path when imported."""
    scheme = _checked_scheme(scheme)
    if scheme in _REGISTRY and not clobber:
        raise ValueError(f"scheme {scheme!r} is already registered; pass clobber=True")
    if not isinstance(backend, str):
        _check_declarations(_completed(backend, scheme), scheme)
    _REGISTRY[scheme] = backend
    _CLASSES.pop(scheme, None)


def _check_declarations(cls: type[BackendBase], scheme: str) -> None:
    """Refuse a class that would take another backend's scheme or the core's options."""
    if scheme not in cls.schemes:
        raise ValueError(
            f"{cls.__name__} registered as {scheme!r} declares the scheme(s) {', '.join(cls.schemes)}: "
            f"set scheme = {scheme!r} on it"
        )
    for option in cls.options:
        if not option.name.isidentifier() or option.name != option.name.lower():
            raise ValueError(f"{cls.__name__}: option {option.name!r} must be a lower-case Python name")
        if option.name in RESERVED_OPTIONS:
            raise ValueError(f"{cls.__name__}: option {option.name!r} is the core's own: rename it")


def _completed(target: type[object], scheme: str) -> type[BackendBase]:
    """A class with every declaration: one that only speaks the per-object protocol
    (fetch-only, as fsspec's smallest filesystems) gets :class:`BackendBase`'s defaults."""
    if issubclass(target, BackendBase):
        return target
    namespace = {
        "__module__": target.__module__,
        "__doc__": target.__doc__,
        "scheme": getattr(target, "scheme", scheme),
    }
    # A class made at run time from both: mypy cannot see its bases.
    return cast("type[BackendBase]", type(target.__name__, (target, BackendBase), namespace))


def backend_class(scheme: str) -> type[BackendBase]:
    """The backend class for ``scheme``, importing it on first use."""
    scheme = scheme.lower()
    found = _CLASSES.get(scheme)
    if found is not None:
        return found
    target = _REGISTRY.get(scheme) or _installed_entry_points().get(scheme)
    if target is None:
        known = ", ".join(sorted(_REGISTRY))
        raise DestinationError(f"no backend for {scheme!r}: known schemes are {known}")
    try:
        if isinstance(target, str):
            module_name, _, class_name = target.rpartition(".")
            target = getattr(importlib.import_module(module_name), class_name)
        cls = _completed(target, scheme)
        _check_declarations(cls, scheme)
    except Exception as exc:
        if scheme in _BUILT_IN:
            raise
        raise DestinationError(f"the {scheme!r} backend did not load: {describe(exc)}") from exc
    _CLASSES[scheme] = cls
    return cls


def known_schemes() -> list[str]:
    """Every scheme registered or declared by an installed package's entry point."""
    return sorted({*_REGISTRY, *_installed_entry_points()})


def _installed_entry_points() -> dict[str, str]:
    """Schemes that installed packages declare, once per process."""
    global _INSTALLED
    if _INSTALLED is None:
        from importlib.metadata import entry_points

        _INSTALLED = {}
        for ep in entry_points(group="jupyter_publish.backends"):
            scheme = ep.name.lower()
            if not _SCHEME.match(scheme) or scheme in _BUILT_IN:
                import warnings

                why = "is built in" if scheme in _BUILT_IN else "is not a URI scheme"
                warnings.warn(
                    f"jupyter-publish: installed backend {ep.value} ignored: {ep.name!r} {why}", stacklevel=2
                )
                continue
            _INSTALLED[scheme] = ep.value.replace(":", ".")
    return _INSTALLED


_INSTALLED: dict[str, str] | None = None


def registered_backends() -> list[type[BackendBase]]:
    """Every registered backend class (entry points included), once each, in
    registration order; imports them, for help texts, option tables and lookups by
    result type. An installed plugin that fails to import is left out, with a warning."""
    import warnings

    found: dict[int, type[BackendBase]] = {}
    for scheme in [*_REGISTRY, *(s for s in _installed_entry_points() if s not in _REGISTRY)]:
        try:
            cls = backend_class(scheme)
        except Exception as exc:  # a broken plugin must not take the front doors down
            if scheme in _BUILT_IN:
                raise
            why = (
                str(exc)
                if isinstance(exc, DestinationError)
                else f"the {scheme!r} backend did not load: {describe(exc)}"
            )
            warnings.warn(f"jupyter-publish: {why}", stacklevel=2)
            continue
        found.setdefault(id(cls), cls)
    return list(found.values())


def scheme_of(ref: str) -> str:
    """The scheme of the backend that reads URI ``ref`` (``https://`` -> ``http``)."""
    scheme, sep, _ = ref.partition("://")
    if not sep or scheme.lower() not in known_schemes():
        raise RefError(f"cannot fetch {ref!r}: use {fetch_usage()} or a job ID")
    return backend_class(scheme).scheme


def for_result_type(result_type: str) -> type[BackendBase] | None:
    """The backend producing Bacalhau result ``Type`` ``result_type`` (or reading a spec
    of that type, any spelling), if one is registered."""
    wanted = result_type.replace("_", "").replace("-", "").lower()
    for cls in registered_backends():
        if result_type == cls.result_type or wanted in cls.spec_types:
            return cls
    return None


def type_label(result_type: str) -> str:
    """What cards call the store behind a result ``Type`` (``S3``, ``the local store``)."""
    cls = for_result_type(result_type)
    return cls.label if cls is not None else result_type


def all_options(use: str) -> list[BackendOption]:
    """Every backend's options for ``use`` (``"publish"``/``"fetch"``), once per name."""
    seen: dict[str, BackendOption] = {}
    for cls in registered_backends():
        for option in cls.options:
            if getattr(option, use):
                seen.setdefault(option.name, option)
    return list(seen.values())


def secret_options(scheme: str | None = None) -> frozenset[str]:
    """Option names declared ``secret``: never recorded, and their values masked wherever
    they turn up (a name one backend keeps secret stays secret even if another declares
    it plainly). An option whose name says it holds one (:func:`redact.is_secret_name`)
    is treated the same wherever options are recorded. With ``scheme``: that backend's
    and those already imported, so a ``local`` publish imports no other backend;
    without: every registered one's."""
    classes = registered_backends() if scheme is None else [backend_class(scheme), *_CLASSES.values()]
    return frozenset(o.name for cls in classes for o in cls.options if o.secret)


def register_secrets(options: Mapping[str, Any], scheme: str | None = None) -> None:
    """Give the scrubber the value of every secret option in ``options`` (a string, or the
    strings of a mapping or sequence: headers, a user/password pair), so that a plugin's
    error quoting its token is masked in messages, ledger rows and cards alike.
    ``scheme``: the backend they go to, if known (see :func:`secret_options`)."""
    from .. import redact

    if not options:
        return
    names = secret_options(scheme)
    for name, value in options.items():
        if name not in names and not redact.is_secret_name(name):
            continue
        if isinstance(value, Mapping):
            items = list(value.values())
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, str):
                redact.register(item)


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def usage() -> str:
    """Every destination form, for help texts and errors: ``local, s3://BUCKET/KEY…``."""
    return _either([cls.example for cls in registered_backends()])


def fetch_usage() -> str:
    """Every reference form, for help texts and errors."""
    return _either([cls.fetch_example for cls in registered_backends()])


__all__ = [
    "DEFAULT_DESTINATION",
    "Backend",
    "BackendBase",
    "BackendOption",
    "BatchBackend",
    "CopiesExisting",
    "CopyProof",
    "CopyProver",
    "Destination",
    "ManifestSidecar",
    "ObjectBackend",
    "PublishTarget",
    "RemoteObject",
    "StoreOutcome",
    "StoredObject",
    "Upload",
    "all_options",
    "backend_class",
    "fetch_usage",
    "for_result_type",
    "known_schemes",
    "register_backend",
    "register_secrets",
    "registered_backends",
    "scheme_of",
    "secret_options",
    "type_label",
    "usage",
]
