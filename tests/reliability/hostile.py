"""Checkers for the hostile-input catalogue: one line, no traceback, no secret anywhere.

A secret can leak in many spellings: raw, inside an ``Authorization: Basic`` header
(base64 of ``user:password``), inside a URL (percent-encoded), inside a JSON string
(escaped), or inside a longer base64 blob at any of three byte alignments.
:func:`secret_forms` lists them all and :func:`find_secrets` searches text, bytes and
every file under a folder (the SQLite ledger and its WAL included) for each one.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

MIN_FORM = 6
"""Shorter encoded fragments would match by chance; the test secrets are long and random."""


def assert_one_line(text: str, what: str = "message") -> str:
    """``text`` is one non-empty line without a traceback; return it stripped."""
    stripped = text.strip()
    assert stripped, f"{what} is empty"
    assert "\n" not in stripped, f"{what} has {stripped.count(chr(10)) + 1} lines:\n{text}"
    assert "Traceback" not in stripped, f"{what} holds a traceback: {text}"
    return stripped


def _b64_aligned(secret: bytes) -> dict[str, str]:
    """The base64 characters fixed by ``secret`` alone, at each of the 3 alignments.

    Inside a longer base64 blob the secret may start at any byte offset mod 3; the
    characters that depend only on its bytes are the whole 3-byte groups it fills.
    """
    forms: dict[str, str] = {}
    for shift in range(3):
        padded = b"\0" * shift + secret
        encoded = base64.b64encode(padded).decode()
        start = 4 if shift else 0
        end = (len(padded) // 3) * 4
        core = encoded[start:end]
        if len(core) >= MIN_FORM:
            forms[f"base64@{shift}"] = core
            forms[f"base64url@{shift}"] = core.replace("+", "-").replace("/", "_")
    return forms


def secret_forms(secret: str) -> dict[str, str]:
    """Every spelling of ``secret`` worth searching for, by name."""
    raw = secret.encode()
    forms = {
        "raw": secret,
        "base64": base64.b64encode(raw).decode(),
        "base64-unpadded": base64.b64encode(raw).decode().rstrip("="),
        "urlencoded": urllib.parse.quote(secret, safe=""),
        "urlencoded-plus": urllib.parse.quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
        "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1],
        "hex": raw.hex(),
    }
    forms.update(_b64_aligned(raw))
    return {name: form for name, form in forms.items() if len(form) >= MIN_FORM}


def all_forms(secrets: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """Forms of each secret, plus of ``user:password`` for each basic-auth pair."""
    found: dict[str, str] = {}
    for index, secret in enumerate(secrets):
        for name, form in secret_forms(secret).items():
            found[f"secret{index}:{name}"] = form
    for index, (user, password) in enumerate(pairs):
        for name, form in secret_forms(f"{user}:{password}").items():
            found[f"basic{index}:{name}"] = form
    return found


def _search(label: str, data: bytes, forms: Mapping[str, str]) -> list[str]:
    hits = []
    for name, form in forms.items():
        needle = form.encode()
        if needle in data or (name.endswith(("raw", "json")) and form.encode("utf-16-le") in data):
            hits.append(f"{name} in {label}")
    return hits


def find_secrets(
    forms: Mapping[str, str],
    texts: Mapping[str, str | bytes] | None = None,
    folders: Iterable[Path] = (),
) -> list[str]:
    """Where any form appears: in the given texts and in every file under ``folders``.

    Returns ``["<form> in <where>", ...]`` (empty when nothing leaked).
    """
    hits: list[str] = []
    for label, text in (texts or {}).items():
        data = text if isinstance(text, bytes) else str(text).encode("utf-8", "surrogateescape")
        hits += _search(label, data, forms)
    for folder in folders:
        for root, _dirs, names in os.walk(folder):
            for name in names:
                path = Path(root, name)
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                hits += _search(str(path), data, forms)
    return hits


def tree(folder: Path) -> set[str]:
    """Every path under ``folder`` (relative, folders too), to diff before and after."""
    found: set[str] = set()
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


def claiming_result(tmp_path: Path, bucket: str, sha256: str) -> dict[str, object]:
    """A colleague's published result, shaped as a real publish to ``bucket`` writes it,
    whose manifest claims that ``evil/weights.bin`` holds a file with ``sha256``."""
    import jupyter_publish as jp

    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "x.txt").write_text("x")
    shape = jp.publish(tmp_path / "theirs", f"s3://{bucket}/theirs/", archive=False).to_dict()
    shape.update(job_id="j-evil", manifest=[
        {"path": "weights.bin", "size": 2 << 20, "sha256": sha256, "cid": None, "kind": "file",
         "location": f"s3://{bucket}/evil/weights.bin", "url": None}
    ])  # fmt: skip
    return shape
