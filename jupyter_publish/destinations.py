"""Parse destination strings and resolve key placeholders.

The text before ``://`` names the backend (``local`` and ``ipfs`` also stand alone); the
registered backend class parses the rest (:meth:`BackendBase.parse_destination`), so
this module knows only what every destination shares:

* Bacalhau's ``DEST,opt=NAME=VALUE,opt=…`` suffix;
* placeholders ``{jobID} {executionID} {nodeID} {date} {time} {user} {notebook}``,
  resolved once per publish, in UTC; any other ``{name}`` is an error rather than being
  left in a key by accident.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .backends import backend_class, known_schemes, register_secrets, usage
from .backends.base import OPTION_ALIASES, BackendBase
from .backends.base import Destination as Destination  # re-exported: its home before backends parsed
from .errors import DestinationError
from .text import describe

PLACEHOLDERS = ("jobID", "executionID", "nodeID", "date", "time", "user", "notebook")


def __getattr__(name: str) -> str:
    if name == "USAGE":  # the old constant: every registered form, made when asked
        return f"use {usage()}"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_destination(text: str, **options: Any) -> Destination:
    """Parse ``text`` into a :class:`Destination`; raise DestinationError saying what to do."""
    if not isinstance(text, str) or not text.strip():
        raise DestinationError(f"empty destination: use {usage()}")
    raw, inline = _split_inline_options(text.strip())
    scheme = raw.partition("://")[0] if "://" in raw else raw.rstrip(":")
    dest = None
    if scheme.lower() in known_schemes():
        dest = _parsed_by(backend_class(scheme), raw)
    if dest is None:
        raise DestinationError(f"unknown destination {raw!r}: use {usage()}")
    template_names(dest.key or dest.url)  # reject unknown placeholders early
    dest = dest.with_options(**inline, **options)
    register_secrets(dest.options, dest.scheme)  # a secret typed inline (,opt=token=…) is masked now
    return dest


def _parsed_by(cls: type[BackendBase], raw: str) -> Destination | None:
    """What the backend made of ``raw``, held to its contract: a Destination of its own
    scheme (never another backend's, which would hand the publish to that one), None, or
    a DestinationError; anything else it raises is its bug, told in one line."""
    try:
        dest = cls.parse_destination(raw)
    except DestinationError:
        raise
    except Exception as exc:
        raise DestinationError(f"the {cls.scheme} backend cannot parse {raw!r}: {describe(exc)}") from exc
    if dest is not None and (not isinstance(dest, Destination) or dest.scheme != cls.scheme):
        raise DestinationError(
            f"the {cls.scheme} backend made no {cls.scheme} destination of {raw!r} "
            f"(got {type(dest).__name__})"
        )
    return dest


def _split_inline_options(raw: str) -> tuple[str, dict[str, str]]:
    """Split Bacalhau's ``DEST,opt=NAME=VALUE,opt=…`` suffix (options of the backend)."""
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
        found[OPTION_ALIASES.get(name.strip().lower(), name.strip().lower())] = value.strip()
    return head, found


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
