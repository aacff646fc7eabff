"""Deterministic folder recipes for the HAMT vectors (shared by the generator and the tests).

A recipe is ``(count, width, extra)``: ``count`` files named ``%0{width}d`` (the number,
zero-padded) each holding ``b"%d\\n" % i``, plus files named ``extra`` (content
``name + "\\n"``). With ``"sub/"`` in ``extra`` the files go into ``sub/`` and the root
holds ``sub/`` and ``readme.txt`` only. Link-size estimate per entry: ``len(name) + 34``
(CIDv0) or ``+ 36`` (CIDv1), against Kubo's 262144-byte threshold.
"""

from __future__ import annotations

import os

RECIPES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    # v0: 4096 * (30 + 34) == 262144 exactly; v1: 4096 * 64 + 4096 * 2 > threshold.
    "v0-at-threshold": (4096, 30, ()),
    # v1: 4096 * (28 + 36) == 262144 exactly; v0: 4096 * 62 < threshold (basic).
    "v1-at-threshold": (4096, 28, ()),
    # one more byte of name than the v0 boundary: sharded everywhere.
    "v0-threshold-plus-one": (4095, 30, ("x" * 31,)),
    # several thousand entries (v0 6000 * 44 > threshold), unicode and dotted names among them.
    "many-6000": (6000, 10, (".hidden", "café ☕.txt", "naïve-日本語", "a" * 200)),
    # a sharded folder (v0 5600 * 48 > threshold) inside a basic one.
    "nested": (5600, 14, ("readme.txt", "sub/")),
}


def make(root: str | os.PathLike[str], recipe: str) -> str:
    """Write the recipe's folder at ``root`` (created) and return its path."""
    count, width, extra = RECIPES[recipe]
    root = os.fspath(root)
    target = root
    if "sub/" in extra:
        os.makedirs(root)
        with open(os.path.join(root, "readme.txt"), "wb") as f:
            f.write(b"readme.txt\n")
        target = os.path.join(root, "sub")
    os.makedirs(target)
    for i in range(count):
        with open(os.path.join(target, f"{i:0{width}d}"), "wb") as f:
            f.write(b"%d\n" % i)
    for name in extra:
        if name in ("sub/", "readme.txt"):
            continue
        with open(os.path.join(target, name), "wb") as f:
            f.write(name.encode() + b"\n")
    return root
