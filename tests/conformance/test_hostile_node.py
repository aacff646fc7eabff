"""IPFS's own tamper case: nothing can change bytes stored under a CID, so the attack is
a node or gateway that answers other bytes for it. A fetch by bare CID (no ledger record
to compare with) must refuse them by the CID alone, through the API or a gateway."""

from __future__ import annotations

import pytest
from tampering import TamperingProxy

import jupyter_publish as jp
from jupyter_publish.errors import IntegrityError


@pytest.mark.parametrize("read_via", ["api", "gateway"])
def test_other_bytes_for_a_cid_are_refused(ipfs_node, tmp_path, read_via):
    src = tmp_path / "data.bin"
    src.write_bytes(b"published once, addressed forever\n" * 100)
    result = jp.publish(src, "ipfs://", archive=False, api=ipfs_node.api_url)
    [record] = [f for f in result.files if f.kind == "file"]
    assert record.cid
    upstream = ipfs_node.api_url if read_via == "api" else ipfs_node.gateway_url
    with TamperingProxy(upstream) as proxy:
        with pytest.raises(IntegrityError) as info:
            jp.fetch(f"ipfs://{record.cid}", tmp_path / "back", **{read_via: proxy.url})
        assert proxy.tampered >= 1
    assert record.cid in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "back").exists() or not any((tmp_path / "back").iterdir())
    # The honest node serves the same CID, and it verifies.
    back = jp.fetch(f"ipfs://{record.cid}", tmp_path / "honest", **{read_via: upstream})
    assert back.verified and back.files[0].path.read_bytes() == src.read_bytes()
