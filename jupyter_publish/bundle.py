"""Collect what is published into a bundle: the files and the empty folders.

``collect`` turns paths, folders and globs into :class:`SourceFile` entries with
bundle-relative POSIX names; :mod:`jupyter_publish.archive` streams a bundle as a
deterministic archive, and the publisher uploads it file by file otherwise.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from .errors import SourceError
from .sizes import CHUNK
from .walk import ACCESS_EFFECTIVE, NOT_TEXT, is_text, stat_named, walk_tree


@dataclass(frozen=True)
class SourceFile:
    """A file to publish: where it is, and its name inside the bundle."""

    name: str
    path: Path
    size: int
    mode: int = 0o644


@dataclass
class Bundle:
    """The files of one publish; ``dirs`` lists empty folders so the tree CID is exact."""

    files: list[SourceFile]
    dirs: list[str] = field(default_factory=list)
    label: str = "results"
    """A short human name (the folder's name, or ``results``)."""
    skipped: list[str] = field(default_factory=list)
    """Bundle names of unreadable entries left out (only with ``skip_unreadable``)."""

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def collect(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    skip_unreadable: bool = False,
    follow_symlinks: bool = False,
    hidden: bool = True,
) -> Bundle:
    """Build a bundle from paths, folders and glob patterns.

    One folder publishes its contents (``results/a.csv`` becomes ``a.csv``), like
    Bacalhau's output folder; several paths keep their own names side by side.
    Anything under a folder that cannot be read fails in one line, or with
    ``skip_unreadable`` is left out and listed in ``Bundle.skipped``; a symlink leading
    out of its folder is refused unless ``follow_symlinks`` (see :mod:`.walk`); a symlink
    publishes its target's bytes. ``hidden=False`` leaves out dotfiles and dotfolders under
    a folder (``ipfs add -r`` without ``--hidden``); a path named explicitly is kept.
    """
    options: _WalkOptions = {
        "skip_unreadable": skip_unreadable,
        "follow_symlinks": follow_symlinks,
        "hidden": hidden,
    }
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise SourceError("nothing to publish: give at least one file or folder")
    expanded = [p for item in items for p in _expand(item)]
    skipped: list[str] = []
    if len(expanded) == 1 and expanded[0].is_dir():
        files, dirs, skipped = _walk(expanded[0], "", options)
    else:
        files, dirs = [], []
        for path in expanded:
            if path.is_dir():
                if not is_text(path.resolve().name):  # it would prefix every name under it
                    raise SourceError(f"cannot publish {os.fspath(path)!r}: {NOT_TEXT}; rename it")
                sub_files, sub_dirs, sub_skipped = _walk(path, path.resolve().name + "/", options)
                files += sub_files
                dirs += sub_dirs or ([] if sub_files else [path.resolve().name])
                skipped += sub_skipped
            else:
                files.append(_source(path, path.name))
    _reject_duplicates(files)
    if not files and not dirs:
        raise SourceError(f"nothing to publish: {', '.join(map(str, items))} holds no files")
    return Bundle(sorted(files, key=lambda f: f.name), sorted(dirs), _label(expanded), sorted(skipped))


def default_name(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> str:
    """The name a publish of ``paths`` gets when it is given none, known before anything
    is read (the ledger's row is written first): the same the bundle's label and so the
    archive's name say, so a job is listed under what the user published. Never raises:
    paths that cannot be read are the publish's error to give."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    expanded: list[Path] = []
    try:
        for item in items:
            text = os.fspath(item)
            if glob.has_magic(text):
                expanded += [Path(m) for m in sorted(glob.glob(os.path.expanduser(text), recursive=True))]
            else:
                expanded.append(Path(text).expanduser())
        return _label(expanded)
    except (OSError, RuntimeError, ValueError, TypeError):  # a symlink loop, a NUL byte: collect() says
        return "results"


def _label(expanded: Sequence[Path]) -> str:
    """A folder's name, a file's name without its suffix, or ``results`` for several."""
    if len(expanded) != 1:
        return "results"
    path = expanded[0].resolve()
    label = path.name if path.is_dir() else path.stem
    return label if label and is_text(label) else "results"  # only a label: never refused for it


def _expand(item: str | os.PathLike[str]) -> list[Path]:
    text = os.fspath(item)
    if glob.has_magic(text):
        matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise SourceError(f"no files match {text!r}: check the pattern and the working folder")
        return [Path(m) for m in matches]
    path = Path(text).expanduser()
    stat_named(path)
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot publish {text!r}: permission denied (not readable)")
    return [path]


class _WalkOptions(TypedDict):
    skip_unreadable: bool
    follow_symlinks: bool
    hidden: bool


def _walk(root: Path, prefix: str, options: _WalkOptions) -> tuple[list[SourceFile], list[str], list[str]]:
    """Every file under ``root`` and every empty folder, by bundle name, and what was skipped.

    :func:`jupyter_publish.walk.walk_tree` decides what is unreadable and which symlinks
    may be followed, the same way for ``cid_of``.
    """
    walked = walk_tree(root, prefix, **options, text_names=True)
    files = [
        SourceFile(name=f.name, path=Path(f.path), size=f.size, mode=0o755 if f.mode & 0o111 else 0o644)
        for f in walked.files
    ]
    return files, walked.dirs, walked.skipped


def _source(path: Path, name: str) -> SourceFile:
    """A publishable file, or a one-line SourceError saying why it is not.

    Readability is checked with ``access()`` rather than by opening the file: the same
    answer (effective IDs, ACLs, root) without an open and close per file.
    """
    text = os.fspath(path)
    if not is_text(name):
        raise SourceError(f"cannot publish {text!r}: {NOT_TEXT}; rename it")
    try:
        info = os.stat(text)
        if not stat.S_ISREG(info.st_mode):  # never open a FIFO or device: it could block
            raise SourceError(f"cannot publish {text!r}: not a regular file")
        if not os.access(text, os.R_OK, effective_ids=ACCESS_EFFECTIVE):
            raise PermissionError
    except SourceError:
        raise
    except PermissionError:
        raise SourceError(f"cannot publish {text!r}: permission denied (not readable)") from None
    except FileNotFoundError:
        raise SourceError(f"cannot publish {text!r}: no such file (a broken link?)") from None
    except OSError as exc:
        raise SourceError(f"cannot publish {text!r}: {exc.strerror or exc}") from None
    mode = 0o755 if info.st_mode & 0o111 else 0o644
    return SourceFile(name=name, path=path, size=info.st_size, mode=mode)


def _reject_duplicates(files: Iterable[SourceFile]) -> None:
    seen: dict[str, Path] = {}
    for f in files:
        if f.name in seen:
            raise SourceError(
                f"two sources would both be published as {f.name!r} ({seen[f.name]} and {f.path}): "
                "rename one or publish their parent folder"
            )
        seen[f.name] = f.path


__all__ = ["CHUNK", "Bundle", "SourceFile", "collect"]
