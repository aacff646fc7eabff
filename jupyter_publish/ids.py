"""Job, execution and node identifiers.

Job and execution IDs are ULIDs (48-bit millisecond time + 80 random bits in Crockford
base32) behind a ``j-``/``e-`` prefix, as Bacalhau prefixes its IDs: they sort by
creation time in the ledger and in S3 listings, and never collide across kernels.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import socket
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_SET = frozenset(_CROCKFORD)


def ulid(now_ms: int | None = None) -> str:
    """A 26-character, lexicographically time-sortable unique identifier."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return encode_ulid((ms << 80) | secrets.randbits(80))


def encode_ulid(value: int) -> str:
    """The 26 Crockford base32 characters of a 128-bit ULID value."""
    if not 0 <= value < 1 << 128:
        raise ValueError(f"a ULID is 128 bits, not {value.bit_length()}")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def decode_ulid(text: str) -> int:
    """The 128-bit value of a ULID (``j-``/``e-`` prefix allowed); ValueError if it is not one.

    Its top 48 bits are the creation time in milliseconds: ``decode_ulid(u) >> 80``.
    """
    body = text[2:] if text[:2] in ("j-", "e-") else text
    if len(body) != 26 or not _CROCKFORD_SET.issuperset(body) or body[0] > "7":
        raise ValueError(f"not a ULID: {text!r}")
    value = 0
    for ch in body:
        value = value << 5 | _CROCKFORD.index(ch)
    return value


def new_job_id() -> str:
    return f"j-{ulid()}"


SHORT_TAIL = 8
"""Characters of a job ID's random tail in its short form: 40 random bits, so two jobs
share one about once in a million pairs, however close in time they were made (their
leading characters, the time, are what jobs made seconds apart share)."""


def short_job_id(job_id: str) -> str:
    """``j-X7K2M9QZ``: what cards and tables show, and what a person types back.

    The ledger resolves it (:meth:`~jupyter_publish.ledger.Ledger.job_row`) like a
    prefix; full IDs stay what is recorded everywhere. Not a job ID: unchanged.
    """
    try:
        decode_ulid(job_id)
    except ValueError:
        return job_id
    return job_id[:2] + job_id[-SHORT_TAIL:]


def short_tail(text: str) -> str | None:
    """The tail a short form names (``j-X7K2M9QZ`` or ``X7K2M9QZ``), or None if it is not one."""
    body = text.removeprefix("j-").upper()
    if len(body) != SHORT_TAIL or not _CROCKFORD_SET.issuperset(body):
        return None
    return body


def new_execution_id() -> str:
    return f"e-{ulid()}"


def node_id() -> str:
    """A stable ID for this machine and user, so results say where they came from."""
    seed = f"{socket.gethostname()}:{current_user()}".encode()
    return "n-" + hashlib.sha256(seed).hexdigest()[:12]


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def notebook_name() -> str:
    """The running notebook's file name when Jupyter says it (``{notebook}`` placeholder)."""
    return os.environ.get("JPY_SESSION_NAME", "").rsplit("/", 1)[-1]
