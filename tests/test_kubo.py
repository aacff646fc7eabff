"""The Kubo RPC client and the IPFS backend, against a real js-ipfs node."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import httpx
import pytest

from jupyter_publish.backends.base import Upload
from jupyter_publish.backends.ipfs import IpfsBackend
from jupyter_publish.backends.kubo import DEFAULT_API, KuboClient, resolve_api
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import BackendError, DestinationError, NotFoundError
from jupyter_publish.testing.process import free_port

HELLO = b"hello world\n"
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
HELLO_V1 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
MIB_V0 = "Qmf5BJUJ129GdC2TuaEXvBV3q5cJ4oD7gBnUD64EcTJW4y"
MIB_V1 = "bafybeifsyv5ykyj2c3sb4lnaravxx6tzmpc6wuv3g3p5xqoh5rhlhshcc4"

# Names that trip up multipart encoders: nesting, one character, spaces and '+', UTF-8.
TREE = {
    "a.txt": b"alpha\n",
    "x": b"one-character name\n",
    "name with space+plus.txt": b"spaces\n",
    "donn\u00e9es.csv": b"a,b\n1,2\n",
    "sub/b.txt": b"bravo\n",
    "sub/deeper/c.bin": bytes(range(256)) * 1000,
    "sub/e/f.txt": b"",
}


def counter_data(size: int) -> bytes:
    """FACTS.md's test data: sha256 of 0, 1, 2 … as 8-byte big-endian, cut to ``size``."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:size])


def write_tree(root: Path, tree: dict[str, bytes]) -> Path:
    for name, data in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def kubo(ipfs_node) -> KuboClient:
    with KuboClient(ipfs_node.api_url, timeout=30) as client:
        yield client


def unknown_cid() -> str:
    """A CID nobody has added (random content, hashed locally)."""
    return _raw_cid(hashlib.sha256(os.urandom(32)).digest())


def _raw_cid(digest: bytes) -> str:
    from multiformats import CID, multihash

    return CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")).encode()


# -- the node itself --------------------------------------------------------------------
def test_node_addresses(ipfs_node):
    port = ipfs_node.api_url.rsplit(":", 1)[1]
    assert ipfs_node.api_url == f"http://127.0.0.1:{port}"
    assert ipfs_node.api_multiaddr == f"/ip4/127.0.0.1/tcp/{port}"
    assert ipfs_node.gateway_url.startswith("http://127.0.0.1:")


def test_version_and_id(kubo, ipfs_node):
    assert kubo.version()["Version"]
    assert kubo.id()["ID"] == ipfs_node.peer_id


# -- add ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cid_version", "raw_leaves", "expected"),
    [(0, None, HELLO_V0), (1, True, HELLO_V1), (1, None, HELLO_V1)],
)
def test_add_known_vector(kubo, cid_version, raw_leaves, expected):
    [entry] = kubo.add([("hello.txt", HELLO)], cid_version=cid_version, raw_leaves=raw_leaves)
    assert entry["Name"] == "hello.txt"
    assert entry["Hash"] == expected  # CIDv1 in base32 although js-ipfs prints base58
    assert isinstance(entry["Size"], int)


def test_add_streams_a_reader_and_reports_progress(kubo, tmp_path):
    path = tmp_path / "mib.bin"
    path.write_bytes(counter_data(1 << 20))
    seen: list[int] = []
    with open(path, "rb") as reader:
        [entry] = kubo.add([("mib.bin", reader)], cid_version=1, progress=seen.append)
    assert entry["Hash"] == MIB_V1
    assert sum(seen) == 1 << 20
    with open(path, "rb") as reader:
        [entry] = kubo.add([("mib.bin", iter(lambda: reader.read(4096), b""))])
    assert entry["Hash"] == MIB_V0


@pytest.mark.parametrize("cid_version", [0, 1])
def test_add_nested_directory_matches_local_cids(kubo, tmp_path, cid_version):
    root = write_tree(tmp_path / "tree", TREE)
    added = kubo.add(
        [(name, data) for name, data in TREE.items()],
        wrap_with_directory=True,
        cid_version=cid_version,
        raw_leaves=cid_version == 1 or None,
    )
    by_name = {entry["Name"]: entry["Hash"] for entry in added}
    assert added[-1]["Name"] == ""
    assert by_name[""] == cid_of(root, cid_version)
    for name in [*TREE, "sub", "sub/deeper", "sub/e"]:
        assert by_name[name] == cid_of(root / name, cid_version), name


def test_add_rejects_bad_names(kubo):
    for bad in ("/abs", "a/../b", "a//b", ""):
        with pytest.raises(ValueError):
            kubo.add([(bad, b"x")])
    with pytest.raises(ValueError):
        kubo.add([("a", b"x"), ("a/b", b"y")])


def test_only_hash_stores_nothing(ipfs_node):
    data = f"only hash {time.time_ns()}".encode()
    with KuboClient(ipfs_node.api_url, timeout=1.5) as client:
        [entry] = client.add([("f", data)], only_hash=True, cid_version=1)
        assert entry["Hash"] == _raw_cid(hashlib.sha256(data).digest())
        with pytest.raises(NotFoundError):
            b"".join(client.cat(entry["Hash"]))


# -- cat, ls, stat, pins ----------------------------------------------------------------------
def test_cat_offsets_lengths_and_windows(kubo):
    data = counter_data(1 << 20)
    [entry] = kubo.add([("mib.bin", data)])
    assert entry["Hash"] == MIB_V0
    assert b"".join(kubo.cat(MIB_V0)) == data
    kubo.cat_window = 100_000  # many requests, each bounded by the RPC timeout
    assert b"".join(kubo.cat(MIB_V0, offset=12_345)) == data[12_345:]
    assert b"".join(kubo.cat(f"/ipfs/{MIB_V0}", offset=5, length=250_000)) == data[5:250_005]
    assert b"".join(kubo.cat(f"ipfs://{MIB_V0}", offset=len(data))) == b""
    assert b"".join(kubo.cat(MIB_V0, length=0)) == b""
    kubo.cat_window = 1 << 18  # exactly four windows: the fifth asks at EOF
    assert b"".join(kubo.cat(MIB_V0)) == data


def test_ls_and_files_stat(kubo):
    added = kubo.add(list(TREE.items()), wrap_with_directory=True)
    root = added[-1]["Hash"]
    top = {entry["Name"]: entry for entry in kubo.ls(root)}
    assert set(top) == {"a.txt", "x", "name with space+plus.txt", "donn\u00e9es.csv", "sub"}
    assert top["sub"]["Type"] == "dir"
    assert top["a.txt"]["Type"] == "file"
    assert top["a.txt"]["Size"] == len(TREE["a.txt"])
    deeper = {entry["Name"]: entry for entry in kubo.ls(f"{root}/sub/deeper")}
    assert deeper["c.bin"]["Size"] == len(TREE["sub/deeper/c.bin"])
    assert b"".join(kubo.cat(deeper["c.bin"]["Hash"])) == TREE["sub/deeper/c.bin"]
    assert b"".join(kubo.cat(f"{root}/name with space+plus.txt")) == b"spaces\n"
    assert kubo.files_stat(root)["Type"] == "dir"
    stat = kubo.files_stat(f"/ipfs/{root}/sub/b.txt")
    assert (stat["Type"], stat["Size"]) == ("file", len(TREE["sub/b.txt"]))
    with pytest.raises(NotFoundError, match=r"does not exist|no link"):
        kubo.files_stat(f"{root}/missing.txt")


def test_pins(kubo):
    [pinned] = kubo.add([("p.txt", f"pinned {time.time_ns()}".encode())])
    assert kubo.pin_ls(pinned["Hash"]) == {pinned["Hash"]: "recursive"}
    assert pinned["Hash"] in kubo.pin_ls(type="recursive")
    [loose] = kubo.add([("l.txt", f"loose {time.time_ns()}".encode())], pin=False)
    with pytest.raises(NotFoundError, match="not pinned"):
        kubo.pin_ls(loose["Hash"])
    assert kubo.pin_add(loose["Hash"]) == [loose["Hash"]]
    assert loose["Hash"] in kubo.pin_ls(type="recursive")


# -- failures -----------------------------------------------------------------------------------
def test_unknown_cid_is_not_found_within_the_timeout(ipfs_node):
    cid = unknown_cid()
    with KuboClient(ipfs_node.api_url, timeout=1.5) as client:
        for call in (lambda: b"".join(client.cat(cid)), lambda: client.ls(cid)):
            started = time.monotonic()
            with pytest.raises(NotFoundError, match=r"not found on the IPFS node within 1.5s"):
                call()
            assert time.monotonic() - started < 6


@pytest.mark.parametrize("form", ["http://127.0.0.1:{port}", "/ip4/127.0.0.1/tcp/{port}", "127.0.0.1:{port}"])
def test_no_daemon_is_a_quick_one_line_error(form):
    port = free_port()
    client = KuboClient(form.format(port=port), timeout=30)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        client.version()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach the IPFS API at http://127.0.0.1:{port}")
    assert "IPFS_API" in message


def test_a_gateway_is_not_an_api(ipfs_node):
    with pytest.raises(BackendError, match="has no version RPC command"):
        KuboClient(ipfs_node.gateway_url).version()


def test_daemon_errors_carry_the_daemon_message(kubo):
    with pytest.raises(BackendError, match="this dag node is a directory") as caught:
        added = kubo.add([("d/f.txt", b"f")], wrap_with_directory=True)
        b"".join(kubo.cat(added[-1]["Hash"]))
    assert "\n" not in str(caught.value)


def test_bad_addresses():
    for bad in ("ftp://host:1", "/unix/tmp/api.sock", "/ip4/1.2.3.4/udp/5001", "http://h:port"):
        with pytest.raises(DestinationError, match="IPFS API address"):
            KuboClient(bad)


def test_credentials_in_the_url_stay_out_of_messages():
    port = free_port()
    client = KuboClient(f"http://user:s3cret@127.0.0.1:{port}", timeout=5)
    assert "s3cret" not in client.api_url
    with pytest.raises(BackendError) as caught:
        client.version()
    assert "s3cret" not in str(caught.value)


# -- where the API is ------------------------------------------------------------------------
def test_api_resolution_order(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ipfs").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("IPFS_PATH", raising=False)
    monkeypatch.delenv("IPFS_API", raising=False)
    assert resolve_api() == DEFAULT_API
    (home / ".ipfs" / "api").write_text("/ip4/127.0.0.2/tcp/5002\n")
    assert resolve_api() == "http://127.0.0.2:5002"
    custom = tmp_path / "custom-repo"
    custom.mkdir()
    (custom / "api").write_text("/dns/example.org/tcp/443/https")
    monkeypatch.setenv("IPFS_PATH", str(custom))
    assert resolve_api() == "https://example.org:443"
    monkeypatch.setenv("IPFS_API", "/ip4/127.0.0.3/tcp/5003")
    assert resolve_api() == "http://127.0.0.3:5003"
    assert resolve_api("http://127.0.0.4:5004/api/v0/") == "http://127.0.0.4:5004"
    assert resolve_api("/ip6/::1/tcp/5005") == "http://[::1]:5005"


def test_env_and_repo_file_reach_the_node(ipfs_node, monkeypatch, tmp_path):
    monkeypatch.setenv("IPFS_API", ipfs_node.api_multiaddr)
    with KuboClient() as client:
        assert client.api_url == ipfs_node.api_url
        assert client.version()["Version"]
    monkeypatch.delenv("IPFS_API")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IPFS_PATH", str(ipfs_node.repo))  # the node writes its api file there
    with KuboClient() as client:
        assert client.api_url == ipfs_node.api_url
        assert client.id()["ID"] == ipfs_node.peer_id


# -- the backend ---------------------------------------------------------------------------------
def make_uploads(root: Path, opened: list[str]) -> list[Upload]:
    def opener(path: Path):
        def open_once():
            opened.append(path.relative_to(root).as_posix())
            return open(path, "rb")

        return open_once

    return [Upload(name, (root / name).stat().st_size, opener(root / name)) for name in TREE]


@pytest.mark.parametrize("cid_version", [0, 1])
def test_backend_round_trip(ipfs_node, tmp_path, cid_version):
    root = write_tree(tmp_path / "result", TREE)
    opened: list[str] = []
    uploads = make_uploads(root, opened)
    sent: list[int] = []
    gateway_port = ipfs_node.gateway_url.rsplit(":", 1)[1]
    # Kubo's config writes addresses as multiaddrs: accept both forms.
    gateway = ipfs_node.gateway_url if cid_version == 0 else f"/ip4/127.0.0.1/tcp/{gateway_port}"
    backend = IpfsBackend(api=ipfs_node.api_multiaddr, gateway=gateway, cid_version=cid_version)
    try:
        outcome = backend.publish(uploads, sent.append)
        root_cid = cid_of(root, cid_version)
        assert sorted(opened) == sorted(TREE)  # each upload read exactly once
        assert sum(sent) == sum(len(data) for data in TREE.values())
        assert outcome.type == "ipfs"
        assert outcome.params == {"CID": root_cid, "Pinned": True, "API": ipfs_node.api_url}
        assert outcome.uri == f"ipfs://{root_cid}"
        assert outcome.url == f"{ipfs_node.gateway_url}/ipfs/{root_cid}"
        assert [obj.name for obj in outcome.objects] == list(TREE)
        for obj in outcome.objects:
            assert obj.location == f"ipfs://{root_cid}/{obj.name}"
            assert obj.extra["CID"] == cid_of(root / obj.name, cid_version)
        assert root_cid in backend.client.pin_ls(type="recursive")

        by_gateway = httpx.get(outcome.objects[0].url, timeout=10)
        assert by_gateway.content == TREE[outcome.objects[0].name]

        listed = {obj.name: obj for obj in backend.list(outcome.uri)}
        assert set(listed) == set(TREE)
        for name, data in TREE.items():
            assert listed[name].cid == cid_of(root / name, cid_version)
            assert listed[name].size == len(data)
            assert b"".join(backend.read(listed[name].location)) == data
        assert (
            b"".join(backend.read(listed["sub/deeper/c.bin"].location, 1000))
            == (TREE["sub/deeper/c.bin"][1000:])
        )

        sub = {obj.name: obj.cid for obj in backend.list(f"ipfs://{root_cid}/sub")}
        assert sub == {
            "b.txt": cid_of(root / "sub/b.txt", cid_version),
            "deeper/c.bin": cid_of(root / "sub/deeper/c.bin", cid_version),
            "e/f.txt": cid_of(root / "sub/e/f.txt", cid_version),
        }
        [single] = backend.list(f"/ipfs/{root_cid}/sub/deeper/c.bin")
        assert (single.name, single.size) == ("c.bin", len(TREE["sub/deeper/c.bin"]))
        assert single.cid == cid_of(root / "sub/deeper/c.bin", cid_version)
    finally:
        backend.close()


def test_backend_errors(ipfs_node, monkeypatch):
    monkeypatch.delenv("IPFS_GATEWAY", raising=False)
    backend = IpfsBackend(api=ipfs_node.api_url, timeout=1.5)
    try:
        outcome = backend.publish([Upload("only.txt", len(HELLO), _bytes_opener(HELLO))])
        assert outcome.url is None and outcome.objects[0].url is None
        assert outcome.objects[0].extra["CID"] == HELLO_V0
        with pytest.raises(NotFoundError):
            backend.list(f"{outcome.uri}/missing.txt")
        with pytest.raises(NotFoundError, match=r"within 1\.5s"):
            backend.list(f"ipfs://{unknown_cid()}")
        with pytest.raises(DestinationError):
            backend.list("ipfs://not-a-cid/x")
        with pytest.raises(DestinationError):
            backend.read("ipfs://")
    finally:
        backend.close()


def _bytes_opener(data: bytes):
    return lambda: io.BytesIO(data)


def test_get_streams_a_folder_as_tar_that_extracts_safely(ipfs_node, tmp_path):
    from jupyter_publish.extract import extract_archive

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"alpha\n")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 1000)
    client = KuboClient(ipfs_node.api_url)
    with open(source / "a.txt", "rb") as a, open(source / "sub" / "b.bin", "rb") as b:
        entries = client.add([("a.txt", a), ("sub/b.bin", b)], wrap_with_directory=True)
    root = entries[-1]["Hash"]
    archive = tmp_path / "got.tar"
    with open(archive, "wb") as out:
        for chunk in client.get(root):
            out.write(chunk)
    extract_archive(archive, tmp_path / "out")
    (top,) = list((tmp_path / "out").iterdir())  # ipfs get puts the tree under the CID's name
    assert (top / "a.txt").read_bytes() == b"alpha\n"
    assert (top / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
