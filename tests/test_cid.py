"""CIDs computed locally must equal what `ipfs add` gives (FACTS.md vectors and more).

Vectors not from FACTS.md were produced by ipfs-unixfs-importer 15 (the js-ipfs
importer) with Kubo's defaults, independently of jupyter_publish.cid.
"""

from __future__ import annotations

import array
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from multiformats import CID

import jupyter_publish.cid as cidmod
from jupyter_publish.cid import (
    CHUNK_SIZE,
    DagNode,
    FileCidBuilder,
    cid_of,
    cid_v1,
    directory_node,
    file_node,
    normalize_cid,
    parse_cid,
    same_content_cid,
    tree_node,
)
from jupyter_publish.errors import DestinationError, SourceError
from jupyter_publish.testing.vectors import FACTS_CIDS, facts_pattern

MiB = 1024 * 1024
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
HELLO_V1 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
EMPTY_FILE = {
    0: "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
    1: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
}
EMPTY_DIR = {
    0: "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
    1: "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
}
FACTS = FACTS_CIDS
pattern = facts_pattern


def build(chunks: Iterator[bytes] | list[bytes], cid_version: int) -> DagNode:
    builder = FileCidBuilder(cid_version)
    for chunk in chunks:
        builder.update(chunk)
    return builder.finish()


@pytest.mark.parametrize("version, cid", [(0, HELLO_V0), (1, HELLO_V1)])
def test_hello_world(version: int, cid: str, tmp_path: Path) -> None:
    assert build([b"hello world\n"], version) == DagNode(cid, 20 if version == 0 else 12, 12)
    (tmp_path / "hello.txt").write_bytes(b"hello world\n")
    assert cid_of(tmp_path / "hello.txt", version) == cid


@pytest.mark.parametrize("version", [0, 1])
def test_empty_file(version: int, tmp_path: Path) -> None:
    assert build([], version).cid == EMPTY_FILE[version]
    assert build([b"", bytearray()], version).cid == EMPTY_FILE[version]
    (tmp_path / "empty").write_bytes(b"")
    assert file_node(tmp_path / "empty", version).size == 0
    assert cid_of(str(tmp_path / "empty"), version) == EMPTY_FILE[version]


@pytest.mark.parametrize("size", [1 * MiB, 10 * MiB])
@pytest.mark.parametrize("version", [0, 1])
def test_facts_vectors_in_memory_stream(size: int, version: int) -> None:
    node = build(pattern(size), version)
    assert node.cid == FACTS[size][version]
    assert node.size == size


@pytest.fixture(scope="module")
def file_100mib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cid") / "pattern-100MiB.bin"
    with open(path, "wb") as f:
        for chunk in pattern(100 * MiB):
            f.write(chunk)
    return path


@pytest.mark.parametrize("version", [0, 1])
def test_facts_vector_100mib_file(file_100mib: Path, version: int) -> None:
    assert file_node(file_100mib, version).cid == FACTS[100 * MiB][version]
    assert cid_of(file_100mib, version) == FACTS[100 * MiB][version]


# Shrunk parameters (2-byte chunks, 3 links per node) reach DAGs of depth 5 with a few
# hundred bytes: (cid_version, length, CID, Tsize) from ipfs-unixfs-importer with
# chunker fixedSize(2), layout balanced(maxChildrenPerNode 3); byte i = (7 i + 3) % 256.
SMALL_DAGS = [
    (0, 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", 6),
    (0, 1, "QmTcYLauNCrhA67eQKBftMBTbhLmK8Q8gVRCkWYk3BcBhh", 9),
    (0, 2, "Qmc3VJaAYhbGF9zBUhm96mXoSk1CN1jQk1goiEXfEQzQJS", 10),
    (0, 3, "QmWGMEyLHXLUBKSR8JeEuWzuYLr2KZ16McvFfNUno8dHfN", 113),
    (0, 6, "Qmch8ppUCXKzBcuKgXckehv73hnAfpAtNxPXNR5XAZp16Z", 168),
    (0, 7, "QmQtGPWjnoPQwkbbSpb3gwMCTUQzJQ9YmsXChFmTa9Yu9D", 322),
    (0, 18, "QmVjkGArKjnMR4X7bTqCxrH24L6qBh6gwHsEnApxo1HcjN", 645),
    (0, 19, "QmPh7B3JCkuRcTwrzKqygTuWr6Pf9dF7RnGnWQfyEaURUB", 849),
    (0, 54, "QmSzw3sXwCa4gpdiQs8UNo1jP3y5qckHuToHjfm6xMDzs7", 2076),
    (0, 55, "QmcKtASiQN723uMgcTDEuatKkR8SH13cAJ9Qqk11UsvGLV", 2331),
    (0, 163, "QmbRnXeC93gsHRAPzJC1gc5Zhzxtdd93taDcq6j347598R", 6678),
    (0, 200, "QmZPMn92RSxaUW9anaLjAfGy3Y3XdBZwC3jA7bVR11QLHg", 8059),
    (1, 0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 0),
    (1, 1, "bafkreiaij7wqrolyv5gx2glkordkq22yacpgg23bdwyweenwlknk37zjyu", 1),
    (1, 2, "bafkreibshnzq7b5u47gassbvdiobdn2xwmbgzwthqquck5tvppfcd4jeqm", 2),
    (1, 3, "bafybeigtmngd2j5jeirxcuisarh4zklv2thnkop6zvxzbg7at5zivpqbhu", 101),
    (1, 6, "bafybeih7a6p5krhxwkthuu76lxavyxtt7wbf7zaipxpildj3gzofdfkvhm", 150),
    (1, 7, "bafybeidpd7k3khmbwsbzzmonolaw3tuluncpnw4v4zpefcli6frtooxa2y", 302),
    (1, 18, "bafybeid4dqdjghwykxvidggk3bswlf3lgyjuc4jhv6cgra5k2zyrilhjoe", 597),
    (1, 19, "bafybeiean735talzl2druqpvab4eg6kjjyj6se5qmplvvzfcdotdw7ix4y", 801),
    (1, 54, "bafybeiepo4osmcmnvnglgxhtlznlhzmtxlf6qw5ezeu2ikgnmxooblkkpi", 1938),
    (1, 55, "bafybeia57dtzo27fedzpv726vf35hcoz3axvcdmkdr4s5ew2ps5dqtuwuy", 2195),
    (1, 163, "bafybeifj7eqtt6xa6t3byssquthbk7aspt2xbjjc5dhkf4hkqiuambi2je", 6274),
    (1, 200, "bafybeichrufqbabatukksmxngu546lkahwtqivaodd2nxshdzst2t7gz4a", 7563),
]


@pytest.mark.parametrize("version, length, cid, tsize", SMALL_DAGS)
def test_balanced_layout_deep_trees(
    version: int, length: int, cid: str, tsize: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cidmod, "CHUNK_SIZE", 2)
    monkeypatch.setattr(cidmod, "MAX_LINKS", 3)
    data = bytes((7 * i + 3) % 256 for i in range(length))
    node = build([data[i : i + 3] for i in range(0, length, 3)], version)
    assert (node.cid, node.tsize, node.size) == (cid, tsize, length)


@pytest.mark.parametrize("version", [0, 1])
def test_update_with_odd_chunk_sizes(version: int) -> None:
    data = b"".join(pattern(3 * CHUNK_SIZE + 12345))
    expected = build([data], version)
    for step in (1000, 4095, CHUNK_SIZE - 1, CHUNK_SIZE + 1, 1_000_003):
        assert build([data[i : i + step] for i in range(0, len(data), step)], version) == expected
    rng = random.Random(42)
    cuts = sorted(rng.sample(range(1, len(data)), 50))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert build(pieces, version) == expected
    # bytearray, memoryview slices and multi-byte buffers are all taken as raw bytes
    mv = memoryview(data)
    assert build([bytearray(data[:5]), mv[5:700000], mv[700000:]], version) == expected
    words = array.array("I", data[: len(data) // 4 * 4])
    assert build([words], version) == build([data[: len(data) // 4 * 4]], version)


def test_builder_rejects_misuse() -> None:
    builder = FileCidBuilder()
    builder.finish()
    with pytest.raises(RuntimeError):
        builder.update(b"x")
    with pytest.raises(RuntimeError):
        builder.finish()
    with pytest.raises(ValueError):
        FileCidBuilder(cid_version=2)


@pytest.mark.parametrize("version", [0, 1])
def test_empty_directory(version: int, tmp_path: Path) -> None:
    assert directory_node({}, version) == DagNode(EMPTY_DIR[version], 4, 0)
    assert cid_of(tmp_path, version) == EMPTY_DIR[version]
    root, dirs = tree_node({}, version)
    assert root.cid == EMPTY_DIR[version] and dirs == {"": root}


def test_directory_links_sorted_bytewise() -> None:
    hello = build([b"hello world\n"], 0)
    names = ["a", "B", "a.txt", "ä", "a-", "_"]
    forward = directory_node({n: hello for n in names})
    backward = directory_node({n: hello for n in reversed(names)})
    assert forward == backward
    assert forward.size == 6 * 12
    with pytest.raises(ValueError):
        directory_node({"a/b": hello})
    with pytest.raises(ValueError):
        directory_node({"": hello})


# (cid_version -> root CID, Tsize) of VECTOR_TREE as `ipfs add -r --hidden` gives it.
VECTOR_TREE = {
    "hello.txt": b"hello world\n",
    ".hidden": b"",
    "sub/deeper/data.bin": b"".join(pattern(300000)),
    "ä.txt": b"x",
    "a-b": b"ab",
}
VECTOR_TREE_ROOT = {
    0: ("QmdQr7dQUx1mikCR3xjcbKotTzfQ3142jK4EkNSgVPNyHy", 300582),
    1: ("bafybeifqe5ezahhecggfoh5ugdjsdqq3qc4u7armq3apbgstvc5pkc23qe", 300544),
}


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.mark.parametrize("version", [0, 1])
def test_directory_tree_on_disk(version: int, tmp_path: Path) -> None:
    write_tree(tmp_path, VECTOR_TREE)
    (tmp_path / "sub" / "empty").mkdir()
    assert cid_of(tmp_path, version) == VECTOR_TREE_ROOT[version][0]

    files: dict[str, DagNode | None] = {rel: build([data], version) for rel, data in VECTOR_TREE.items()}
    files["sub/empty"] = None
    root, dirs = tree_node(files, version)
    assert (root.cid, root.tsize) == VECTOR_TREE_ROOT[version]
    assert root.size == sum(len(d) for d in VECTOR_TREE.values())
    assert sorted(dirs) == ["", "sub", "sub/deeper", "sub/empty"]
    assert dirs["sub/empty"].cid == EMPTY_DIR[version]
    assert dirs["sub"].cid == cid_of(tmp_path / "sub", version)
    assert dirs["sub/deeper"] == directory_node({"data.bin": files["sub/deeper/data.bin"]}, version)
    # the same tree spelled with redundant separators, and in another order
    respelled = {f"./{rel}" if "/" in rel else rel: node for rel, node in reversed(files.items())}
    assert tree_node(respelled, version)[0] == root


def test_tree_node_rejects_bad_paths() -> None:
    hello = build([b"hello world\n"], 0)
    for bad in ({"/abs": hello}, {"a/../b": hello}, {"": hello}):
        with pytest.raises(ValueError):
            tree_node(bad)
    with pytest.raises(ValueError):
        tree_node({"a": hello, "a/b": hello})
    with pytest.raises(ValueError):
        tree_node({"a/b": hello, "a": hello})
    with pytest.raises(ValueError):
        tree_node({"a": hello, "./a": hello})


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinks_are_followed(tmp_path: Path) -> None:
    real, linked = tmp_path / "real", tmp_path / "linked"
    write_tree(real, {"d/f.txt": b"hello world\n", "g": b"x"})
    write_tree(linked, {"g": b"x"})
    try:
        (linked / "d").symlink_to(real / "d", target_is_directory=True)
    except OSError:
        pytest.skip("cannot create symlinks here")
    with pytest.raises(SourceError, match="outside the folder"):
        cid_of(linked, symlinks="follow")  # a link out of the folder is followed only when asked
    assert cid_of(linked, symlinks="follow", follow_symlinks=True) == cid_of(real)
    (real / "d" / "loop").symlink_to(real, target_is_directory=True)
    with pytest.raises(SourceError, match="loop"):
        cid_of(real, symlinks="follow")


def test_cid_of_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing"):
        cid_of(tmp_path / "missing")
    with pytest.raises(SourceError):
        file_node(tmp_path / "missing")


V1_OF_EMPTY_DIR_BASE58 = "zdj7WbTaiJT1fgatdet9Ei9iDB5hdCxkbVyhyh8YTUnXMiwYi"


def test_parse_cid() -> None:
    assert parse_cid(HELLO_V0).version == 0
    assert parse_cid(f"  {HELLO_V1}\n").codec.name == "raw"
    assert parse_cid(HELLO_V1.upper()).digest == parse_cid(HELLO_V1).digest
    assert parse_cid(V1_OF_EMPTY_DIR_BASE58).codec.name == "dag-pb"
    for bad in ["", "hello", "Qm123", HELLO_V0[:-1] + "0", "bafyXYZ", "zzzz", HELLO_V1[:-3], "b", "z"]:
        with pytest.raises(DestinationError, match="is not a valid CID"):
            parse_cid(bad)
    with pytest.raises(DestinationError, match="is not a valid CID"):
        parse_cid(None)  # type: ignore[arg-type]


def test_normalize_and_convert() -> None:
    assert normalize_cid(f" {HELLO_V0} ") == HELLO_V0
    assert normalize_cid(HELLO_V1.upper()) == HELLO_V1
    assert normalize_cid(V1_OF_EMPTY_DIR_BASE58) == EMPTY_DIR[1]
    assert cid_v1(EMPTY_DIR[0]) == EMPTY_DIR[1]
    assert cid_v1(V1_OF_EMPTY_DIR_BASE58) == EMPTY_DIR[1]
    assert cid_v1(HELLO_V1) == HELLO_V1
    with pytest.raises(DestinationError):
        normalize_cid("not-a-cid")


def test_same_content_cid() -> None:
    assert same_content_cid(EMPTY_DIR[0], EMPTY_DIR[1])
    assert same_content_cid(EMPTY_DIR[1], V1_OF_EMPTY_DIR_BASE58)
    assert same_content_cid(HELLO_V1, HELLO_V1.upper())
    assert not same_content_cid(EMPTY_DIR[0], EMPTY_FILE[0])
    # same multihash, other codec: not the same block
    raw_twin = CID("base32", 1, "raw", parse_cid(EMPTY_DIR[0]).digest).encode()
    assert not same_content_cid(EMPTY_DIR[0], raw_twin)
    with pytest.raises(DestinationError):
        same_content_cid(EMPTY_DIR[0], "nope")


def test_hand_written_cid_strings_match_multiformats() -> None:
    """CID strings are encoded and decoded without multiformats (too slow per file): same text."""
    rng = random.Random(5)
    for _ in range(300):
        multihash = b"\x12\x20" + rng.randbytes(32)
        for raw, cid in [
            (multihash, CID("base58btc", 0, "dag-pb", multihash)),
            (b"\x01\x70" + multihash, CID("base32", 1, "dag-pb", multihash)),
            (b"\x01\x55" + multihash, CID("base32", 1, "raw", multihash)),
        ]:
            text = cidmod._cid_str(raw)
            assert text == cid.encode()
            assert cidmod._cid_raw(text) == raw == bytes(cid)
    # other spellings still parse (through multiformats), to the same bytes
    assert cidmod._cid_raw(V1_OF_EMPTY_DIR_BASE58) == bytes(parse_cid(EMPTY_DIR[1]))
    assert cidmod._cid_raw(HELLO_V1.upper()) == bytes(parse_cid(HELLO_V1))
    with pytest.raises(DestinationError):
        cidmod._cid_raw("Qm" + "0" * 44)  # 0 is not in the base58 alphabet
