"""One real backend behind the fault proxy, for the retry, stall and interrupt tests.

Publishing through the proxy records the proxy's address in the job (the S3 endpoint,
the IPFS API, the transfer.sh-style download URL), so fetching the job by its ID goes
through the proxy too.
"""

from __future__ import annotations

import os
import time

import pytest

import jupyter_publish as jp

MiB = 1024 * 1024
KINDS = ("s3", "http", "ipfs")


def source(tmp_path, size: int):
    """A folder with one random file of ``size`` bytes."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(size))
    return src


class Store:
    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        if kind == "s3":
            self.server = request.getfixturevalue("s3_env")
            self.bucket = request.getfixturevalue("s3_bucket")
            self.port = int(self.server.endpoint.rsplit(":", 1)[1])
        elif kind == "http":
            # transfer.sh style: the download URL it answers is on the proxy (dav names its own port)
            self.server = request.getfixturevalue("nginx_transfer")
            self.port = self.server.port
        else:
            self.server = request.getfixturevalue("ipfs_node")
            self.port = int(self.server.api_url.rsplit(":", 1)[1])

    def destination(self, proxy) -> tuple[str, dict[str, str]]:
        """The ``to`` and options of a publish through ``proxy``."""
        if self.kind == "s3":
            return f"s3://{self.bucket}/r{time.monotonic_ns()}/", {"endpoint": proxy.url}
        if self.kind == "http":
            return f"{proxy.url}/r{time.monotonic_ns()}/", {}
        return "ipfs://", {"api": proxy.url}

    def cli_destination(self, proxy) -> list[str]:
        to, options = self.destination(proxy)
        flags = [f"--{name}={value}" for name, value in options.items()]
        return ["--to", to, *flags]

    def publish(self, src, proxy, archive: bool = False):
        to, options = self.destination(proxy)
        return jp.publish(src, to, archive=archive, **options)

    def fetch(self, result, dest, proxy):
        extra = {"endpoint": proxy.url} if self.kind == "s3" else {}
        return jp.fetch(result.job_id, dest, **extra)
