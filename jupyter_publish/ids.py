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


def ulid(now_ms: int | None = None) -> str:
    """A 26-character, lexicographically time-sortable unique identifier."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_job_id() -> str:
    return f"j-{ulid()}"


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
