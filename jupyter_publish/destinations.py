"""Parse destination strings and resolve key placeholders.

Accepted forms (see DESIGN.md):

* ``local`` / ``local://`` – the embedded content-addressed store;
* ``s3://bucket/key-template`` plus Bacalhau's ``,opt=endpoint=…,opt=region=…`` suffix;
* ``ipfs://`` (options: ``api``, ``gateway``, ``cid_version``);
* ``http(s)://host/path/`` – transfer.sh-style upload.

Placeholders ``{jobID} {executionID} {nodeID} {date} {time} {user} {notebook}`` are
resolved once per publish, in UTC; any other ``{name}`` is an error rather than being
left in a key by accident.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import DestinationError

PLACEHOLDERS = ("jobID", "executionID", "nodeID", "date", "time", "user", "notebook")
_OPTION_ALIASES = {"endpoint_url": "endpoint", "region_name": "region"}
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
USAGE = "use local, s3://bucket/key, ipfs:// or http(s)://host/path"


@dataclass(frozen=True)
class Destination:
    """A parsed destination: which backend, where inside it, and backend options."""

    scheme: str
    """One of ``local``, ``s3``, ``ipfs``, ``http``."""
    text: str
    """The destination as the user wrote it, minus ``,opt=`` options."""
    bucket: str = ""
    key: str = ""
    """S3 key template (placeholders unresolved)."""
    url: str = ""
    """HTTP base URL template (placeholders unresolved)."""
    options: Mapping[str, Any] = field(default_factory=dict)

    def with_options(self, **options: Any) -> Destination:
        """A copy with extra options; explicit ``None`` values are dropped."""
        merged = dict(self.options)
        merged.update({_OPTION_ALIASES.get(k, k): v for k, v in options.items() if v is not None})
        return Destination(self.scheme, self.text, self.bucket, self.key, self.url, merged)


def parse_destination(text: str, **options: Any) -> Destination:
    """Parse ``text`` into a :class:`Destination`; raise DestinationError saying what to do."""
    if not isinstance(text, str) or not text.strip():
        raise DestinationError(f"empty destination: {USAGE}")
    raw = text.strip()
    raw, inline = _split_inline_options(raw)
    lowered = raw.lower()
    if lowered in {"local", "local:", "local://"}:
        dest = Destination("local", "local")
    elif lowered.startswith("s3://"):
        dest = _parse_s3(raw)
    elif lowered in {"ipfs", "ipfs:", "ipfs://"}:
        dest = Destination("ipfs", "ipfs://")
    elif lowered.startswith("ipfs://"):
        raise DestinationError(
            f"cannot publish to {raw!r}: IPFS content IDs are computed, not chosen; use ipfs://"
        )
    elif lowered.startswith(("http://", "https://")):
        dest = _parse_http(raw)
    else:
        raise DestinationError(f"unknown destination {raw!r}: {USAGE}")
    template_names(dest.key or dest.url)  # reject unknown placeholders early
    return dest.with_options(**inline, **options)


def _split_inline_options(raw: str) -> tuple[str, dict[str, str]]:
    """Split Bacalhau's ``s3://b/k,opt=endpoint=…,opt=region=…`` suffix."""
    if ",opt=" not in raw and ",opt." not in raw:
        return raw, {}
    head, *parts = raw.split(",")
    found: dict[str, str] = {}
    for part in parts:
        if not part.startswith("opt=") or "=" not in part[4:]:
            raise DestinationError(
                f"malformed option {part!r} in {raw!r}: write ,opt=NAME=VALUE (e.g. ,opt=region=us-east-1)"
            )
        name, value = part[4:].split("=", 1)
        found[_OPTION_ALIASES.get(name.strip().lower(), name.strip().lower())] = value.strip()
    return head, found


def _parse_s3(raw: str) -> Destination:
    rest = raw[5:]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise DestinationError(f"no bucket in {raw!r}: write s3://BUCKET/KEY")
    if "{" in bucket or not _BUCKET_RE.match(bucket):
        raise DestinationError(
            f"invalid bucket name {bucket!r} in {raw!r}: use 3-63 lowercase letters, digits, '.', '-'"
        )
    return Destination("s3", raw, bucket=bucket, key=key)


def _parse_http(raw: str) -> Destination:
    import urllib.parse

    from .redact import scrub

    shown = scrub(raw)  # a password in the URL (even a malformed one) is never echoed
    try:
        parsed = urllib.parse.urlsplit(raw)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise DestinationError(f"malformed URL {shown!r}: {scrub(str(exc))}") from None
    if not parsed.hostname:
        raise DestinationError(f"no host in {shown!r}: write http(s)://HOST[:PORT]/PATH/")
    if parsed.username or parsed.password:
        raise DestinationError(
            "credentials in the destination URL would be recorded in the ledger: "
            "pass them with --auth or JUPYTER_PUBLISH_HTTP_AUTH instead"
        )
    if parsed.query or parsed.fragment:
        raise DestinationError(
            f"{parsed.scheme}://{parsed.netloc}{parsed.path} has a query string or fragment: "
            "uploads append file names to the path, and a token there would be recorded; "
            "pass tokens with JUPYTER_PUBLISH_HTTP_HEADERS or auth= instead"
        )
    return Destination("http", raw, url=raw)


def template_names(template: str) -> list[str]:
    """The placeholder names in ``template``; unknown or malformed ones raise."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DestinationError(f"malformed placeholder in {template!r}: {exc}") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conv:
            raise DestinationError(
                f"unknown placeholder {{{name}}} in {template!r}: "
                f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        names.append(name)
    return names


def placeholder_values(
    *, job_id: str, execution_id: str, node_id: str, user: str, notebook: str, now: datetime
) -> dict[str, str]:
    """The values a publish substitutes, ``{date}``/``{time}`` in UTC like Bacalhau."""
    utc = now.astimezone(timezone.utc)
    return {
        "jobID": job_id,
        "executionID": execution_id,
        "nodeID": node_id,
        "date": utc.strftime("%Y%m%d"),
        "time": utc.strftime("%H%M%S"),
        "user": user,
        "notebook": notebook or "notebook",
    }


def resolve_template(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders once; ``{{``/``}}`` stay literal braces."""
    template_names(template)
    return template.format_map(dict(values))


def resolve_some(template: str, values: Mapping[str, str]) -> str:
    """Substitute only the placeholders in ``values``; the others (and ``{{``) stay.

    Lets a template be pinned early (``%%publish --sync-every`` resolves ``{jobID}`` once
    for every round) and finished later by :func:`resolve_template`.
    """

    def escape(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    parts: list[str] = []
    for literal, name, spec, conv in string.Formatter().parse(template):
        parts.append(escape(literal))
        if name is None:
            continue
        if name in values and not spec and not conv:
            parts.append(escape(values[name]))
        else:
            parts.append("{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}")
    return "".join(parts)


def object_key(resolved: str, *, archive: bool, archive_name: str) -> str:
    """Bacalhau's rule: archives end in ``.tar.gz``, plain uploads in ``/``.

    A prefix-like key (empty or ending in ``/``) gets ``archive_name`` for an archive.
    """
    if archive:
        if not resolved or resolved.endswith("/"):
            return f"{resolved}{archive_name}"
        return resolved if resolved.endswith(".tar.gz") else f"{resolved}.tar.gz"
    if resolved and not resolved.endswith("/"):
        return f"{resolved}/"
    return resolved
