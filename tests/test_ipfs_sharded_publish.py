"""A plain IPFS publish of a folder the js-ipfs node wraps differently pins OUR root.

Kubo (and ``cid_of``) shards a directory above 256 KiB of link bytes; the js-ipfs test
node's ``add`` does not shard the wrapping folder there. The publish then sends our
directory blocks as a CAR (``dag/import``), so what is pinned is ``cid_of(folder)``.

Measured with this node: it does not shard by entry count either (js-ipfs documents 1000
entries; 1200 short names came back as one basic folder, equal to cid_of's), so a case where
both sides shard cannot be made with it; a daemon that shards as Kubo does agrees with
cid_of by construction, which the HAMT vector table (Kubo and the js importer) pins down.
"""

from __future__ import annotations

import pytest

import jupyter_publish as jp
from jupyter_publish.backends.kubo import KuboClient
from jupyter_publish.car import encode_car
from jupyter_publish.cid import DagNode, _cid_raw, _cid_str, cid_of, tree_blocks
from jupyter_publish.testing.car import decode_car


@pytest.mark.parametrize("cid_version", [0, 1])
def test_car_round_trips_the_directory_blocks(cid_version):
    files = {f"d/{i:04d}.txt": DagNode(_leaf_cid(i, cid_version), 10, 4) for i in range(1200)}
    files["empty"] = None
    root, blocks = tree_blocks(files, cid_version)
    header, decoded = decode_car(b"".join(encode_car([_cid_raw(root.cid)], blocks)))
    assert header == {"roots": [_cid_raw(root.cid)], "version": 1}
    assert decoded == blocks
    assert _cid_str(decoded[-1][0]) == root.cid  # children first, the root last
    assert len({cid for cid, _ in blocks}) >= 3  # root, d/, empty/


def _leaf_cid(i: int, cid_version: int) -> str:
    import hashlib

    digest = b"\x12\x20" + hashlib.sha256(b"%d" % i).digest()
    return _cid_str(b"\x01\x55" + digest if cid_version else digest)


@pytest.mark.parametrize("cid_version", [0, 1])
def test_plain_publish_of_1500_files_pins_cid_of(ipfs_env, tmp_path, cid_version):
    # 1500 links of ~190 bytes: above 256 KiB, so cid_of (as Kubo) makes a HAMT shard,
    # while the js-ipfs node's add wraps them in one basic directory (its root differs).
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1500):
        (folder / f"{'long-name-' * 16}{i:04d}.txt").write_text(f"{i}\n")
    client = KuboClient(ipfs_env.api_url)
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    added = client.add(files, wrap_with_directory=True, cid_version=cid_version, only_hash=True, pin=False)
    expected = cid_of(folder, cid_version)
    assert added[-1]["Hash"] != expected  # the node's own wrap: the CAR path is what pins ours
    result = jp.publish(folder, "ipfs://", archive=False, cid_version=cid_version, quiet=True)
    assert result.root_cid == expected
    assert result.params["CID"] == expected
    assert expected in client.pin_ls(expected)
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    assert sorted(p.name for p in (tmp_path / "back").rglob("*.txt")) == sorted(
        p.name for p in folder.iterdir()
    )
