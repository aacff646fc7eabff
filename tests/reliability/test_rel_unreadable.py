"""Nothing unreadable is lost silently, and no symlink leads out of a published folder unasked.

Tests run as root here, and root reads a mode-000 file: unreadable entries are made with
what stops root too (a FIFO, a socket, a dangling link, an entry removed mid-walk), and
mode-000 folders and files are read by a child process without the capabilities that let
root bypass permissions (``setpriv --bounding-set=-dac_override,-dac_read_search``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import SourceError
from jupyter_publish.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.txt").write_text("beta\n")
    return folder


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()  # the socket file stays


def _dangling(p: Path) -> None:
    p.symlink_to(p.parent / "no-such-target")


def _self_loop(p: Path) -> None:
    p.symlink_to(p)  # ELOOP when followed


# name of the bad entry (under sub/), how to make it, what the line says
BAD = {
    "fifo": (_fifo, "not a regular file"),
    "socket": (_socket, "not a regular file"),
    "dangling": (_dangling, "broken symlink"),
}


class _Listing:
    """What ``os.scandir`` returns, from a list taken before the fault."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)


@pytest.fixture
def remove_after_listing(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, Path], None]:
    """Fault injection: once ``folder`` is listed, ``victim`` is removed (a racing process)."""

    def arm(folder: Path, victim: Path) -> None:
        real = os.scandir

        def scandir(path: str) -> _Listing:
            with real(path) as it:
                entries = list(it)
            if os.path.samefile(path, folder) and os.path.lexists(victim):
                shutil.rmtree(victim) if victim.is_dir() else victim.unlink()
            return _Listing(entries)

        monkeypatch.setattr(os, "scandir", scandir)

    return arm


def _nothing_stored(home: Path) -> bool:
    blobs = home / "store" / "blobs"
    return not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("archive", [False, True])
def test_special_entries_fail_the_publish_in_one_line(tmp_path, isolated_home, kind, archive) -> None:
    folder = _tree(tmp_path / "res")
    make, says = BAD[kind]
    make(folder / "sub" / kind)
    with pytest.raises(SourceError) as info:
        jp.publish(folder, archive=archive)
    line = str(info.value)
    assert "\n" not in line and str(folder / "sub" / kind) in line and says in line
    assert "--skip-unreadable" in line
    assert _nothing_stored(isolated_home)
    [job] = Ledger().jobs()
    assert job["status"] == "failed" and kind in job["error"]
    with pytest.raises(SourceError, match=says):
        cid_of(folder, symlinks="follow")  # never the CID of a partial tree


@pytest.mark.parametrize("kind", sorted(BAD))
def test_skip_unreadable_leaves_them_out_and_records_them(tmp_path, kind) -> None:
    folder = _tree(tmp_path / "res")
    clean = _tree(tmp_path / "clean")
    BAD[kind][0](folder / "sub" / kind)
    result = jp.publish(folder, archive=False, skip_unreadable=True)
    assert result.skipped == [f"sub/{kind}"]
    assert sorted(f.path for f in result.files if f.kind == "file") == ["a.txt", "sub/b.txt"]
    assert "skipped 1 unreadable entry: 'sub/" + kind + "'" in str(result)
    stored = json.loads(sqlite3.connect(Ledger().path).execute("SELECT result_json FROM jobs").fetchone()[0])
    assert stored["skipped"] == [f"sub/{kind}"]
    assert Ledger().result(result.job_id).skipped == [f"sub/{kind}"]
    with pytest.warns(UserWarning, match="skipped 1 unreadable entry"):
        skipped_cid = cid_of(folder, skip_unreadable=True, symlinks="follow")
    assert skipped_cid == cid_of(clean) == result.root_cid


def test_a_file_that_vanishes_between_listing_and_reading(tmp_path, remove_after_listing) -> None:
    folder = _tree(tmp_path / "res")
    remove_after_listing(folder / "sub", folder / "sub" / "b.txt")
    with pytest.raises(SourceError, match=r"b\.txt'.*vanished"):
        jp.publish(folder, archive=False)
    (folder / "sub" / "b.txt").write_text("beta\n")
    result = jp.publish(folder, archive=False, skip_unreadable=True)
    assert result.skipped == ["sub/b.txt"]


def test_a_folder_removed_mid_walk(tmp_path, remove_after_listing) -> None:
    folder = _tree(tmp_path / "res")
    remove_after_listing(folder, folder / "sub")
    with pytest.raises(SourceError, match=r"sub'.*vanished"):
        cid_of(folder)


def _without_dac(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as root without the capabilities that bypass file permissions."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot make a file unreadable")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JUPYTER_PUBLISH_HOME": str(home),
        "JUPYTER_PUBLISH_QUIET": "1",
    }
    return subprocess.run(
        [*prefix, sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def _cli(*args: str) -> str:
    return f"import sys; from jupyter_publish.cli import main; sys.exit(main({list(args)!r}))"


@pytest.mark.parametrize("what", ["folder", "file"])
def test_mode_000_entries_fail_the_publish_and_cid(tmp_path, what) -> None:
    folder = _tree(tmp_path / "res")
    bad = folder / "sub" if what == "folder" else folder / "sub" / "b.txt"
    bad.chmod(0)
    home = tmp_path / "home"
    out = _without_dac(_cli("publish", str(folder), "--no-archive"), home)
    assert out.returncode == 1, out.stdout + out.stderr
    [line] = out.stderr.strip().splitlines()
    assert f"'{bad}': permission denied" in line and "--skip-unreadable" in line
    assert _nothing_stored(home)
    out = _without_dac(_cli("cid", str(folder)), home)
    assert out.returncode == 1 and "permission denied" in out.stderr and len(out.stderr.splitlines()) == 1
    out = _without_dac(_cli("publish", str(folder), "--no-archive", "--skip-unreadable", "--json"), home)
    assert out.returncode == 0, out.stderr
    skipped = "sub" if what == "folder" else "sub/b.txt"
    assert json.loads(out.stdout)["skipped"] == [skipped]
    out = _without_dac(_cli("publish", str(folder), "--skip-unreadable"), home)
    assert out.returncode == 0 and f"skipped 1 unreadable entry: '{skipped}'" in out.stdout
    out = _without_dac(_cli("cid", str(folder), "--skip-unreadable"), home)
    assert out.returncode == 0 and len(out.stderr.splitlines()) == 1 and "skipped 1" in out.stderr


# ----------------------------------------------------------------------------- symlinks


def test_symlink_out_of_the_folder_is_refused_by_publish_and_cid(tmp_path, isolated_home) -> None:
    folder = _tree(tmp_path / "res")
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "key.pem").write_text("PRIVATE\n")
    (folder / "sub" / "out").symlink_to(secret, target_is_directory=True)
    (folder / "pem").symlink_to(secret / "key.pem")
    for call in (lambda: jp.publish(folder), lambda: cid_of(folder, symlinks="follow")):
        with pytest.raises(SourceError, match="outside the folder") as info:
            call()
        assert "--follow-symlinks" in str(info.value) and "\n" not in str(info.value)
    assert _nothing_stored(isolated_home)
    result = jp.publish(folder, archive=False, follow_symlinks=True)
    assert {"pem", "sub/out/key.pem"} <= {f.path for f in result.files}
    assert cid_of(folder, **result.cid_params, follow_symlinks=True) == result.root_cid


def test_symlinks_inside_the_folder_are_still_followed(tmp_path) -> None:
    folder = _tree(tmp_path / "res")
    (folder / "latest").symlink_to("sub", target_is_directory=True)
    (folder / "b-again.txt").symlink_to(folder / "sub" / "b.txt")
    result = jp.publish(folder, archive=False)
    assert {f.path for f in result.files if f.kind == "file"} == {
        "a.txt",
        "b-again.txt",
        "latest/b.txt",
        "sub/b.txt",
    }
    assert cid_of(folder, **result.cid_params) == result.root_cid


@pytest.mark.parametrize("loop", ["parent", "self"])
def test_a_symlink_loop_is_the_same_one_line_in_publish_and_cid(tmp_path, loop) -> None:
    folder = _tree(tmp_path / "res")
    link = folder / "sub" / "loop"
    if loop == "parent":
        link.symlink_to(folder, target_is_directory=True)
    else:
        _self_loop(link)
    lines = []
    for call in (
        lambda: jp.publish(folder),
        lambda: cid_of(folder, symlinks="follow"),
        lambda: jp.publish(folder, skip_unreadable=True),
    ):
        with pytest.raises(SourceError, match="symlink loop") as info:
            call()
        lines.append(str(info.value).replace("compute the CID of", "publish"))
    assert len(set(lines)) == 1 and str(link) in lines[0] and "\n" not in lines[0]


def test_a_deep_tree_is_walked_without_recursion(tmp_path) -> None:
    folder = tmp_path / "deep"
    here = folder
    folder.mkdir()
    for _ in range(1500):  # deeper than Python's recursion limit, within PATH_MAX
        here = here / "d"
        here.mkdir()
    (here / "f").write_text("x")
    try:
        result = jp.publish(folder, archive=False)
        assert [f.path.count("/") for f in result.files if f.kind == "file"] == [1500]
        assert cid_of(folder) == result.root_cid
    finally:  # pytest's own clean-up of old temp folders recurses: leave nothing this deep
        (here / "f").unlink()
        while here != folder:
            here.rmdir()
            here = here.parent
