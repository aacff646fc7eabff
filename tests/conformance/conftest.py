"""The conformance suite's backends, modelled on fsspec's ``tests/abstract``.

Every test in this folder that takes ``backend_case`` runs once per entry of
:data:`DESCRIPTORS`, against that backend's real server (the session fixtures of
``tests/servers_*.py``: SeaweedFS, nginx WebDAV, the js-ipfs node; nothing for local).
A new backend gets the whole suite by adding one entry here; a registered scheme
without one fails ``test_every_registered_backend_has_a_descriptor``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from conformance_case import FETCH_PLAIN_BY_URI, RESUME, BackendCase
from tampering import TamperingProxy

from jupyter_publish.results import FileRecord, PublishedResult


def _other_bytes(size: int) -> bytes:
    """Bytes of the same length that differ from anything published here (random)."""
    return os.urandom(size) if size else b""


def _local(request: pytest.FixtureRequest) -> BackendCase:
    def tamper(result: PublishedResult, record: FileRecord) -> dict[str, Any]:
        from jupyter_publish.backends.local import LocalBackend

        blob = LocalBackend().blob_path(record.sha256)
        blob.chmod(0o644)  # blobs are filed read-only
        blob.write_bytes(_other_bytes(record.size))
        return {}

    return BackendCase("local", "local", "local", tamper, resume_counts_skipped=False)


def _s3(request: pytest.FixtureRequest) -> BackendCase:
    server = request.getfixturevalue("s3_env")
    bucket = request.getfixturevalue("s3_bucket")

    def tamper(result: PublishedResult, record: FileRecord) -> dict[str, Any]:
        assert record.location and record.location.startswith(f"s3://{bucket}/"), record.location
        key = record.location[len(f"s3://{bucket}/") :]
        server.client().put_object(Bucket=bucket, Key=key, Body=_other_bytes(record.size))
        return {}

    return BackendCase(
        "s3",
        f"s3://{bucket}/conformance/{{jobID}}/",
        "s3",
        tamper,
        options={"endpoint": server.endpoint},
        fetch_options={"endpoint": server.endpoint},
        resume_counts_skipped=True,
    )


def _ipfs(request: pytest.FixtureRequest) -> BackendCase:
    node = request.getfixturevalue("ipfs_node")

    def tamper(result: PublishedResult, record: FileRecord) -> dict[str, Any]:
        # Content-addressed: the stored bytes cannot change under their CID, so the
        # attack is a node answering other bytes for it (see tampering.py).
        proxy = TamperingProxy(node.api_url).__enter__()
        request.addfinalizer(lambda: proxy.__exit__(None, None, None))
        return {"api": proxy.url}

    return BackendCase(
        "ipfs",
        "ipfs://",
        "ipfs",
        tamper,
        options={"api": node.api_url},
        fetch_options={"api": node.api_url},
        unsupported={
            RESUME: "an IPFS add is one request that either pins the whole folder or nothing; publish again"
        },
    )


def _http(request: pytest.FixtureRequest) -> BackendCase:
    nginx = request.getfixturevalue("nginx_dav")

    def tamper(result: PublishedResult, record: FileRecord) -> dict[str, Any]:
        assert record.location and record.location.startswith(nginx.base_url), record.location
        path = Path(nginx.root, unquote(urlsplit(record.location).path).lstrip("/"))
        assert path.is_file(), path
        path.write_bytes(_other_bytes(record.size))
        return {}

    return BackendCase(
        "http",
        f"{nginx.base_url}/conformance/{{jobID}}/",
        "urlDownload",
        tamper,
        unsupported={
            RESUME: "an HTTP drop keeps no record of partial uploads to continue",
            FETCH_PLAIN_BY_URI: "a plain publish's URI is a folder, and HTTP servers list no folders",
        },
    )


@dataclass(frozen=True)
class Descriptor:
    servers: tuple[str, ...]
    """The server fixtures ``make`` starts (so the test is marked ``servers``)."""
    make: Callable[[pytest.FixtureRequest], BackendCase]


DESCRIPTORS: dict[str, Descriptor] = {
    "local": Descriptor((), _local),
    "s3": Descriptor(("s3_server",), _s3),
    "ipfs": Descriptor(("ipfs_node",), _ipfs),
    "http": Descriptor(("nginx_dav",), _http),
}
"""One entry per backend scheme (aliases such as ``https`` share their backend's)."""


@pytest.fixture(
    params=[
        pytest.param(scheme, id=scheme, marks=[pytest.mark.servers] if d.servers else [])
        for scheme, d in DESCRIPTORS.items()
    ]
)
def backend_case(request: pytest.FixtureRequest) -> BackendCase:
    """The backend under test, its server running, as a :class:`BackendCase`."""
    return DESCRIPTORS[request.param].make(request)


@pytest.fixture
def descriptors() -> dict[str, Descriptor]:
    return DESCRIPTORS
