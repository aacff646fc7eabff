"""IPFS end to end: local CIDs equal the node's, publish/fetch round trips, errors."""

from __future__ import annotations

import hashlib
import os

import pytest

import jupyter_publish as jp
from jupyter_publish.backends.kubo import KuboClient
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import BackendError, IntegrityError, NotFoundError
from jupyter_publish.ledger import Ledger

MiB = 1024 * 1024


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "deep" / "er").mkdir(parents=True)
    (root / "table.csv").write_text("a,b\n1,2\n")
    (root / "deep" / "er" / "blob.bin").write_bytes(os.urandom(700_000))  # 3 chunks
    (root / "deep" / "note.md").write_text("# note\n")
    (root / ".hidden").write_text("hidden files are published too\n")
    (root / "empty" / "nested").mkdir(parents=True)  # empty folders are part of the CID
    return root


def _only_hash(client: KuboClient, root, cid_version: int) -> str:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            files.append((path.relative_to(root).as_posix(), open(path, "rb")))  # noqa: SIM115
        elif not any(path.iterdir()):
            files.append((path.relative_to(root).as_posix(), None))  # an empty folder
    try:
        entries = client.add(
            files, wrap_with_directory=True, cid_version=cid_version, only_hash=True, pin=False
        )
    finally:
        for _, handle in files:
            if handle is not None:
                handle.close()
    return entries[-1]["Hash"]


@pytest.mark.parametrize("cid_version", [0, 1])
def test_cid_of_random_50_mib_file_matches_the_node(ipfs_node, tmp_path, cid_version):
    path = tmp_path / "random.bin"
    with open(path, "wb") as handle:
        for _ in range(50):
            handle.write(os.urandom(MiB))
    client = KuboClient(ipfs_node.api_url)
    with open(path, "rb") as handle:
        (entry,) = client.add([("random.bin", handle)], cid_version=cid_version, only_hash=True, pin=False)
    assert cid_of(path, cid_version) == entry["Hash"]


@pytest.mark.parametrize("cid_version", [0, 1])
def test_cid_of_nested_directory_matches_the_node(ipfs_node, results, cid_version):
    assert cid_of(results, cid_version) == _only_hash(KuboClient(ipfs_node.api_url), results, cid_version)


@pytest.mark.parametrize(("archive", "cid_version"), [(False, 0), (False, 1), (True, 0)])
def test_publish_folder_root_cid_equals_cid_of(ipfs_env, results, tmp_path, archive, cid_version):
    result = jp.publish(results, "ipfs://", archive=archive, cid_version=cid_version)
    assert result.type == "ipfs"
    assert result.root_cid == cid_of(results, cid_version)
    if not archive:
        assert result.params["CID"] == result.root_cid  # what is pinned is the folder itself
    files = jp.cids(result.job_id)
    for path in ("table.csv", "deep/er/blob.bin", ".hidden"):
        row = files[files["path"] == path].iloc[0]
        assert row["cid"] == cid_of(results / path, cid_version)
        assert row["sha256"] == hashlib.sha256((results / path).read_bytes()).hexdigest()
    pins = KuboClient(ipfs_env.api_url).pin_ls()
    assert result.params["CID"] in pins
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    for path in ("table.csv", "deep/er/blob.bin", ".hidden"):
        assert (tmp_path / "back" / path).read_bytes() == (results / path).read_bytes()


def test_fetch_ipfs_uri_verifies_by_cid(ipfs_env, results, tmp_path):
    result = jp.publish(results, "ipfs://", archive=False)
    fetched = jp.fetch(f"ipfs://{result.root_cid}/deep", tmp_path / "deep")
    assert fetched.verified
    assert sorted(f.path.relative_to(tmp_path / "deep").as_posix() for f in fetched.files) == [
        "er/blob.bin",
        "note.md",
    ]
    assert all("cid" in f.verified_against for f in fetched.files)


def test_fetch_with_wrong_expected_cid_is_an_integrity_error(ipfs_env, results, tmp_path):
    result = jp.publish(results, "ipfs://", archive=False)
    good = next(f for f in result.files if f.path == "table.csv")
    other = next(f for f in result.files if f.path == "deep/note.md")
    spec = {"Type": "ipfs", "Params": {"CID": good.cid}}
    assert jp.fetch(spec, tmp_path / "ok").verified
    # A ledger entry claiming the wrong CID for a location must be caught.
    tampered = jp.PublishedResult.from_dict(result.to_dict())
    for record in tampered.files:
        if record.path == "table.csv":
            record.cid = other.cid
    with pytest.raises(IntegrityError):
        jp.fetch(tampered, tmp_path / "bad")
    assert not (tmp_path / "bad" / "table.csv").exists()


def test_stopped_daemon_is_one_line(results, monkeypatch):
    from jupyter_publish.testing.process import free_port

    monkeypatch.setenv("IPFS_API", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendError) as info:
        jp.publish(results, "ipfs://")
    assert "cannot reach the IPFS API" in str(info.value) and "\n" not in str(info.value)
    assert Ledger().jobs()[0]["status"] == "failed"


def test_unknown_cid_is_not_found_quickly(ipfs_env, tmp_path):
    unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    with pytest.raises(NotFoundError):
        jp.fetch(f"ipfs://{unknown}", tmp_path / "x", timeout=2)


def test_fetch_through_the_gateway_verifies_the_cid(ipfs_node, results, tmp_path, monkeypatch):
    monkeypatch.setenv("IPFS_API", ipfs_node.api_url)
    result = jp.publish(results, "ipfs://", archive=False)
    record = next(f for f in result.files if f.path == "deep/er/blob.bin")
    monkeypatch.delenv("IPFS_API")
    fetched = jp.fetch(f"ipfs://{record.cid}", tmp_path / "gw", gateway=ipfs_node.gateway_url)
    assert fetched.verified
    (only,) = fetched.files
    assert only.path.read_bytes() == (results / "deep/er/blob.bin").read_bytes()


def test_an_unpinned_publish_does_not_say_pinned(ipfs_env, results):
    result = jp.publish(results, "ipfs://", archive=False, pin=False)
    assert result.params["Pinned"] is False
    assert f"IPFS CID {result.params['CID']} (not pinned)" in str(result)
    assert "(not pinned)" in result._repr_html_() and "(pinned)" not in result._repr_html_()
    assert result.params["CID"] not in KuboClient(ipfs_env.api_url).pin_ls()
    again = jp.publish(results, "ipfs://", archive=False)
    assert again.params["Pinned"] is True and f"{again.params['CID']} (pinned)" in str(again)
