"""Run the RO-Crate community validator (PyPI ``roc-validator``) on a crate, offline.

``python tests/rocrate_validation.py CONTEXT_FILE CRATE_DIR [validator options]``

The validator fetches the crate's JSON-LD ``@context`` from w3id.org; here that one URL
is answered from ``CONTEXT_FILE`` (the RO-Crate 1.1 context, or ro-crate-py's bundled
context, a superset) and every other network access raises, so nothing leaves the host.
It hooks three places of roc-validator 0.13 (its JSON-LD document loader, its HTTP
requester, and rdflib's/urllib's URL opener): a newer validator may need them updated.
Prints the validator's report; exits 0 when the crate is valid.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any, ClassVar

CONTEXTS = {"https://w3id.org/ro/crate/1.1/context"}


def _refuse(*args: Any, **kwargs: Any) -> Any:
    target = args[0] if args else kwargs
    raise RuntimeError(f"refused network access: {getattr(target, 'full_url', target)}")


def main(context_file: str, crate: str, *options: str) -> int:
    with open(context_file, encoding="utf-8") as handle:
        context = json.load(handle)

    import rdflib._networking
    import requests
    from rocrate_validator.utils import document_loader
    from rocrate_validator.utils import http as validator_http

    urllib.request.urlopen = _refuse  # type: ignore[assignment]
    rdflib._networking.urlopen = _refuse  # type: ignore[attr-defined]
    requests.Session.send = lambda self, request, **kw: _refuse(request.url)  # type: ignore[method-assign]

    def fetch_json_ld(url: str) -> Any:
        if url.rstrip("/") in CONTEXTS:
            return context
        return _refuse(url)

    class _Response:
        status_code = 200
        headers: ClassVar[dict[str, str]] = {"Content-Type": "application/ld+json"}
        text = json.dumps(context)
        content = text.encode()

        def json(self) -> Any:
            return context

    def http_get(self: Any, url: str, **kwargs: Any) -> Any:
        return _Response() if url.rstrip("/") in CONTEXTS else _refuse(url)

    document_loader._fetch_json_ld = fetch_json_ld
    validator_http.HttpRequester.get = http_get  # type: ignore[method-assign]

    from rocrate_validator.cli import cli

    args = ["-y", "--disable-color", "validate", "--no-paging", "-v", *options, crate]
    try:
        cli.main(args=args, prog_name="rocrate-validator", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
