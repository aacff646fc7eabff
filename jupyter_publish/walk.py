"""One walk of a folder for both publishing (:mod:`.bundle`) and ``cid_of`` (:mod:`.cid`).

Nothing is lost silently: an entry that cannot be read (a folder or file without read
permission, a broken symlink, a FIFO, socket or device, something that vanished between
listing and reading) stops the walk with one line naming it, before any byte is uploaded,
unless ``skip_unreadable`` is set; then it is left out and listed in ``Walked.skipped``.
Symlinks are followed only inside the folder: one leading outside it is refused unless
``follow_symlinks`` is set, and a loop is refused always, with the same line both ways.
That is ``symlinks="follow"``, what publishing does (a link publishes its target's bytes).
``symlinks="node"`` is what ``ipfs add -r`` does and ``cid_of`` does by default: a symlink
is kept as itself (``Walked.links``, its target text), never followed, so a link out of
the folder, a broken one or a loop is simply a link. ``hidden=False`` leaves out every
entry whose name starts with ``.``, as ``ipfs add -r`` without ``--hidden`` does.
The walk is iterative, so a tree thousands of levels deep cannot overflow the stack.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from .errors import SourceError

SKIP_HINT = "pass skip_unreadable=True (--skip-unreadable) to leave it out"
FOLLOW_HINT = "pass follow_symlinks=True (--follow-symlinks) to include what it points to"
ACCESS_EFFECTIVE = os.access in os.supports_effective_ids
"""access() can answer for the effective IDs (setuid helpers, root with dropped capabilities)."""


@dataclass(frozen=True)
class Found:
    """A readable regular file: its name in the tree (POSIX, relative), path, size and mode."""

    name: str
    path: str
    size: int
    mode: int


@dataclass(frozen=True)
class Link:
    """A symlink kept as itself (``symlinks="node"``): its tree name, path and target text."""

    name: str
    path: str
    target: str


SYMLINK_MODES = ("node", "follow")
"""``node``: a symlink is a UnixFS symlink node (``ipfs add -r``); ``follow``: its target."""


@dataclass
class Walked:
    """What a walk kept, and what it left out because ``skip_unreadable`` was set."""

    files: list[Found] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    """Folders with nothing kept in them (so the tree and its CID are exact)."""
    skipped: list[str] = field(default_factory=list)
    """Tree names of unreadable entries that were left out."""
    links: list[Link] = field(default_factory=list)
    """Symlinks kept as themselves (only with ``symlinks="node"``)."""


class UnreadableError(SourceError):
    """An entry under a published folder cannot be read; nothing was uploaded."""


class SymlinkError(SourceError):
    """A symlink under a published folder leads outside it, or round in a loop."""


def skipped_line(skipped: list[str]) -> str:
    """The one line that says what a walk left out."""
    shown = ", ".join(repr(s) for s in skipped[:5]) + (
        f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    )
    return f"skipped {len(skipped)} unreadable entr{'y' if len(skipped) == 1 else 'ies'}: {shown}"


def stat_named(path: str | os.PathLike[str], verb: str = "publish") -> os.stat_result:
    """The stat of a path the user named (always followed), or the walk's one line for it.

    Publishing and ``cid_of`` both start here, so a named path that is missing, a broken
    link or a symlink loop fails with the same words as the same thing inside a folder.
    """
    text = os.fspath(path)
    try:
        return os.stat(text)
    except ValueError:  # a NUL byte: no file can have that name
        raise SourceError(f"cannot {verb} {text!r}: no such file or folder") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkError(_loop_line(text, verb)) from None
        if isinstance(exc, FileNotFoundError):
            broken = os.path.islink(text)
            reason = "a broken symlink (its target does not exist)" if broken else "no such file or folder"
        else:
            reason = _reason(exc)
        raise SourceError(f"cannot {verb} {text!r}: {reason}") from None


def walk_tree(
    root: str | os.PathLike[str],
    prefix: str = "",
    *,
    skip_unreadable: bool = False,
    follow_symlinks: bool = False,
    verb: str = "publish",
    symlinks: str = "follow",
    hidden: bool = True,
    text_names: bool = False,
) -> Walked:
    """Every readable file and every empty folder under ``root``, named ``prefix + relpath``.

    ``text_names``: a name that is not valid UTF-8 is unreadable (publishing: a store key,
    a manifest and the ledger hold text); ``cid_of`` keeps it, as bytes, like ``ipfs add``.
    """
    if symlinks not in SYMLINK_MODES:
        raise ValueError(f"symlinks must be 'node' or 'follow', not {symlinks!r}")
    top = os.fspath(root)
    real_top = os.path.realpath(top)
    out = Walked()
    st = os.stat(top)
    # (folder path, its tree name with trailing "/", (dev, inode) of it and its ancestors)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (top, prefix, frozenset({(st.st_dev, st.st_ino)}))
    ]
    while stack:
        path, rel, ancestors = stack.pop()
        name = rel.rstrip("/")
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            _unreadable(out, path, name, _reason(exc), skip_unreadable, verb)
            continue
        kept = 0
        subdirs = []
        for entry in entries:
            child = rel + entry.name
            if not hidden and entry.name.startswith("."):
                continue
            if text_names and not is_text(entry.name):
                _unreadable(out, entry.path, child, NOT_TEXT, skip_unreadable, verb)
                continue
            if symlinks == "node" and entry.is_symlink():
                try:
                    out.links.append(Link(child, entry.path, os.readlink(entry.path)))
                except OSError as exc:
                    _unreadable(out, entry.path, child, _reason(exc), skip_unreadable, verb)
                    continue
                kept += 1
                continue
            try:
                kind, info = _classify(entry, real_top, follow_symlinks, verb)
            except SourceError:
                raise
            except OSError as exc:
                _unreadable(out, entry.path, child, _reason(exc), skip_unreadable, verb)
                continue
            if kind == "dir":
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    raise SymlinkError(_loop_line(entry.path, verb))
                subdirs.append((entry.path, child + "/", ancestors | {key}))
            elif kind == "file":
                out.files.append(Found(child, entry.path, info.st_size, info.st_mode))
            else:
                _unreadable(out, entry.path, child, kind, skip_unreadable, verb)
                continue
            kept += 1
        if not kept and name and name != prefix.rstrip("/"):
            out.dirs.append(name)
        stack.extend(reversed(subdirs))
    return out


def _classify(entry: os.DirEntry[str], real_top: str, follow: bool, verb: str) -> tuple[str, os.stat_result]:
    """``dir``, ``file`` or why not (a reason); OSError when it cannot even be looked at."""
    if entry.is_symlink():
        try:
            target = os.path.realpath(entry.path, strict=True)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "a broken symlink (its target does not exist)") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SymlinkError(_loop_line(entry.path, verb)) from None
            raise
        if not follow and target != real_top and not target.startswith(real_top.rstrip(os.sep) + os.sep):
            raise SymlinkError(
                f"cannot {verb} {entry.path!r}: a symlink to {target!r}, outside the folder; "
                f"copy what it points to into the folder, or {FOLLOW_HINT}"
            )
    info = entry.stat()  # follows the link; for a plain entry the one stat per file
    if stat.S_ISDIR(info.st_mode):
        return "dir", info
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, socket or device)", info
    if not os.access(entry.path, os.R_OK, effective_ids=ACCESS_EFFECTIVE):
        raise PermissionError(errno.EACCES, "permission denied")
    return "file", info


NOT_TEXT = "its name is not valid UTF-8, which no store key, manifest or ledger can hold"


def is_text(name: str) -> bool:
    """Whether a file name from the disk is valid UTF-8 (no surrogate-escaped bytes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError) and exc.strerror and "symlink" in exc.strerror:
        return exc.strerror
    if isinstance(exc, FileNotFoundError):
        return "it vanished while the folder was being read"
    if isinstance(exc, PermissionError):
        return "permission denied (not readable)"
    return exc.strerror or str(exc)


def _unreadable(out: Walked, path: str, name: str, reason: str, skip: bool, verb: str) -> None:
    if not skip:
        raise UnreadableError(f"cannot {verb} {path!r}: {reason}; fix it or remove it, or {SKIP_HINT}")
    out.skipped.append(name)


def _loop_line(path: str, verb: str) -> str:
    reason = "a symlink loop (it leads back to itself or a folder above it)"
    return f"cannot {verb} {path!r}: {reason}; remove the link"


__all__ = [
    "SYMLINK_MODES",
    "Found",
    "Link",
    "SymlinkError",
    "UnreadableError",
    "Walked",
    "is_text",
    "skipped_line",
    "walk_tree",
]
