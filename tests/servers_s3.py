"""Fixtures for a real S3 server: SeaweedFS ``weed mini`` on loopback, one per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from jupyter_publish.testing.seaweed import SeaweedS3

# Variables that would make boto3 look past the test server's credentials.
_AWS_NOISE = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    """A started SeaweedFS S3 endpoint with random credentials; stopped by PID at the end."""
    try:
        server = SeaweedS3()
    except RuntimeError as exc:  # weed not installed
        pytest.fail(str(exc))
    with server.serving():
        yield server


def _unique_bucket(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def s3_bucket(s3_server: SeaweedS3) -> str:
    """A fresh, empty, unversioned bucket on the session's server."""
    return s3_server.create_bucket(_unique_bucket("jp-test"))


@pytest.fixture
def s3_versioned_bucket(s3_server: SeaweedS3) -> str:
    """A fresh, empty bucket with versioning enabled."""
    return s3_server.create_bucket(_unique_bucket("jp-test-v"), versioning=True)


@pytest.fixture
def s3_env(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedS3]:
    """The standard AWS environment pointing at the test server (and nothing else)."""
    for name in _AWS_NOISE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name, value in s3_server.credentials_env().items():
        monkeypatch.setenv(name, value)
    yield s3_server
