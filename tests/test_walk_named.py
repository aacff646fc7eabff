"""A path the user names fails in the same words for a publish and for ``cid_of``.

Inside a folder the shared walk already agreed; the named path itself did not: a
symlink loop given to ``publish`` said "no such file or folder", ``cid_of`` said "Too
many levels of symbolic links". Both now start from :func:`walk.stat_named`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.bundle import collect
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import SourceError
from jupyter_publish.walk import SymlinkError


def _lines(path: Path, expected: type[SourceError]) -> set[str]:
    lines = set()
    for call in (
        lambda: collect(path),
        lambda: jp.publish(path),
        lambda: cid_of(path),
        lambda: cid_of(path, symlinks="follow", follow_symlinks=True),
    ):
        with pytest.raises(expected) as info:
            call()
        lines.add(str(info.value).replace("compute the CID of", "publish"))
    return lines


@pytest.mark.parametrize("shape", ["self", "mutual"])
def test_a_named_symlink_loop_is_one_line_in_publish_and_cid(tmp_path: Path, shape: str) -> None:
    link = tmp_path / "results"
    if shape == "self":
        link.symlink_to("results")
    else:
        (tmp_path / "other").symlink_to("results")
        link.symlink_to("other")
    (line,) = _lines(link, SymlinkError)
    loop = "a symlink loop (it leads back to itself or a folder above it); remove the link"
    assert line == f"cannot publish {str(link)!r}: {loop}"


def test_a_named_broken_link_and_a_missing_path_say_which(tmp_path: Path) -> None:
    broken = tmp_path / "results"
    broken.symlink_to("gone")
    (line,) = _lines(broken, SourceError)
    assert line == f"cannot publish {str(broken)!r}: a broken symlink (its target does not exist)"
    for missing in (tmp_path / "missing", tmp_path / "nul\x00.txt"):
        (line,) = _lines(missing, SourceError)
        assert line == f"cannot publish {str(missing)!r}: no such file or folder"


def test_a_loop_inside_the_folder_has_the_same_words(tmp_path: Path) -> None:
    folder = tmp_path / "res"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "up").symlink_to("..", target_is_directory=True)
    lines = set()
    for call in (lambda: collect(folder), lambda: cid_of(folder, symlinks="follow")):
        with pytest.raises(SymlinkError) as info:
            call()
        lines.add(str(info.value).replace("compute the CID of", "publish"))
    assert lines == {
        f"cannot publish {str(folder / 'sub' / 'up')!r}: a symlink loop "
        "(it leads back to itself or a folder above it); remove the link"
    }
