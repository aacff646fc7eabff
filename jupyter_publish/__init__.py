"""jupyter-publish: publish notebook results to S3, IPFS, HTTP or a local store.

Every publish gets a job ID, is recorded in a ledger with the sha256 and IPFS CID of
each file, and can be fetched back verified. ``%load_ext jupyter_publish`` adds the
``%%publish``/``%%fetch`` magics. Names are imported lazily so loading is instant.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "publish": "jupyter_publish.api",
    "fetch": "jupyter_publish.api",
    "jobs": "jupyter_publish.api",
    "cids": "jupyter_publish.api",
    "resume": "jupyter_publish.api",
    "export": "jupyter_publish.api",
    "lineage": "jupyter_publish.api",
    "cid_of": "jupyter_publish.cid",
    "cids_from_bacalhau": "jupyter_publish.bacalhau",
    "cids_in_text": "jupyter_publish.bacalhau",
    "preview": "jupyter_publish.preview",
    "PublishedResult": "jupyter_publish.results",
    "FetchResult": "jupyter_publish.results",
    "register_backend": "jupyter_publish.backends",
    "PublishError": "jupyter_publish.errors",
    "IntegrityError": "jupyter_publish.errors",
}

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .api import cids, export, fetch, jobs, lineage, publish, resume
    from .bacalhau import cids_from_bacalhau, cids_in_text
    from .backends import register_backend
    from .cid import cid_of
    from .errors import IntegrityError, PublishError
    from .preview import preview
    from .results import FetchResult, PublishedResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_publish' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """The package, whose exported names stay what they are: ``jp.lineage`` and
    ``jp.preview`` are functions, which importing the modules of the same name (the
    import system then sets the package's attribute to the module) must not replace.
    The modules are reached as ``from jupyter_publish.lineage import …``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in _EXPORTS
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext jupyter_publish``: register the magics (IPython is imported only here)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)


__all__ = [
    "FetchResult",
    "IntegrityError",
    "PublishError",
    "PublishedResult",
    "__version__",
    "cid_of",
    "cids",
    "cids_from_bacalhau",
    "cids_in_text",
    "export",
    "fetch",
    "jobs",
    "lineage",
    "load_ipython_extension",
    "preview",
    "publish",
    "register_backend",
    "resume",
    "unload_ipython_extension",
]
