"""A real IPFS node on loopback: js-ipfs with its Kubo-style HTTP RPC API and a gateway.

No Kubo binary can be installed from the registries we reach, but js-ipfs (from npm)
speaks the same ``POST /api/v0/...`` dialect. The node lives in ``servers/ipfs-node``
(``package.json`` + lockfile + ``node.mjs``); its ``node_modules`` is installed with
``npm ci`` on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from .process import ServerProcess

NODE_DIR_ENV = "JUPYTER_PUBLISH_IPFS_NODE_DIR"
NPM_CI_TIMEOUT = 600.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback needs no proxy, whatever ``http_proxy`` says."""


def default_node_dir() -> Path:
    """Where ``node.mjs`` and its ``package.json`` live (env override, else the repo's)."""
    override = os.environ.get(NODE_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "servers" / "ipfs-node"


def ensure_installed(directory: Path) -> None:
    """Run ``npm ci`` once if ``node_modules`` is missing or was left half-installed.

    npm writes ``node_modules/.package-lock.json`` last, so its absence means an
    interrupted install. A file lock keeps parallel test workers from racing.
    """
    if not (directory / "package.json").is_file():
        raise RuntimeError(f"no js-ipfs node at {directory}: set {NODE_DIR_ENV} to servers/ipfs-node")
    marker = directory / "node_modules" / ".package-lock.json"
    if marker.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm not found: install Node.js 18+ with npm to run the js-ipfs test node "
            f"(then `npm ci` in {directory})"
        )
    with open(directory / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise RuntimeError(f"`npm ci` failed in {directory}:\n{tail}")


class IpfsNode(ServerProcess):
    """js-ipfs on 127.0.0.1 with free ports, a fresh repo per start, stopped by PID.

    After :meth:`start`: ``api_url`` (``http://127.0.0.1:PORT``), ``api_multiaddr``
    (``/ip4/127.0.0.1/tcp/PORT``), ``gateway_url`` and ``peer_id``. A fresh repo each
    time because js-ipfs keeps a killed node's ``repo.lock`` for about 20 seconds.
    """

    name = "ipfs-node"
    start_timeout = 60.0

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        node_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(workdir)
        self.node_dir = Path(node_dir) if node_dir else default_node_dir()
        self.repo: Path | None = None
        self.api_url = ""
        self.api_multiaddr = ""
        self.gateway_url = ""
        self.peer_id = ""
        self._node: str | None = None
        self._log_offset = 0

    def start(self) -> IpfsNode:
        self._node = shutil.which("node")
        if self._node is None:
            raise RuntimeError("node not found: install Node.js 18+ to run the js-ipfs test node")
        ensure_installed(self.node_dir)
        self.repo = Path(tempfile.mkdtemp(prefix="repo-", dir=self.workdir))
        self.api_url = self.api_multiaddr = self.gateway_url = self.peer_id = ""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start()
        return self

    def command(self) -> list[str]:
        return [str(self._node), str(self.node_dir / "node.mjs"), "--repo", str(self.repo)]

    def ready(self) -> bool:
        if not self.api_url:
            info = self._announcement()
            if info is None:
                return False
            self.api_url, self.api_multiaddr = info["api"], info["api_multiaddr"]
            self.gateway_url, self.peer_id = info["gateway"], info.get("id", "")
        request = urllib.request.Request(f"{self.api_url}/api/v0/version", method="POST")
        with _DIRECT.open(request, timeout=2) as response:
            status: int = response.status
            return status == 200

    def _announcement(self) -> dict[str, Any] | None:
        """The JSON line ``node.mjs`` prints once both servers listen."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            for line in log:
                if line.startswith(b"{") and b'"ipfs_node"' in line:
                    info: dict[str, Any] = json.loads(line)
                    return info
        return None

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        if self.repo is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.repo)
            self.repo = None
