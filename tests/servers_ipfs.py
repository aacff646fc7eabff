"""Fixtures for a real IPFS node: js-ipfs with its Kubo-style RPC API, one per session.

Nothing is skipped: a machine without node/npm fails these tests with a message
saying what to install, because IPFS support must be tested against a real node.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_publish.testing.ipfs import IpfsNode


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNode]:
    """A started js-ipfs node (API + gateway on free loopback ports); stopped by PID."""
    node = IpfsNode(tmp_path_factory.mktemp("ipfs-node"))
    try:
        node.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the js-ipfs test node: {exc}", pytrace=False)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def ipfs_env(ipfs_node: IpfsNode, monkeypatch: pytest.MonkeyPatch) -> IpfsNode:
    """``IPFS_API`` and ``IPFS_GATEWAY`` pointing at the session's node."""
    monkeypatch.setenv("IPFS_API", ipfs_node.api_url)
    monkeypatch.setenv("IPFS_GATEWAY", ipfs_node.gateway_url)
    return ipfs_node
