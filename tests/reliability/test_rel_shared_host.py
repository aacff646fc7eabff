"""On a shared host no other account can read what one user published.

The home folder, ledger, store and its temp folder are private (0700 folders, 0600 or
stricter files) whatever the umask, and an old world-readable home is tightened.
``jupyter-publish serve`` answers only requests that carry its token.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import httpx
import pytest
from machines import running_serve

import jupyter_publish as jp
from jupyter_publish.ledger import Ledger


def _loose(home: Path) -> list[str]:
    """Everything under ``home`` (itself included) that another account could read."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(home)} {mode:o}")
    return found


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("x,y\n1,2\n")
    (root / "sub" / "b.txt").write_text("hello\n")
    return root


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_home_ledger_and_store_are_private(results, tmp_path, monkeypatch, umask):
    home = tmp_path / "fresh" / "jp-home"
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(home))
    old = os.umask(umask)
    try:
        one = jp.publish(results, "local")
        jp.publish(results, "local", archive=False)
        jp.fetch(one.job_id, tmp_path / "back")
        jp.jobs()
    finally:
        os.umask(old)
    assert (home / "ledger.sqlite").exists() and (home / "store" / "tmp").is_dir()
    assert any((home / "store" / "blobs").rglob("*"))
    assert _loose(home) == []


def test_an_old_world_readable_home_is_tightened(results, tmp_path, monkeypatch):
    home = tmp_path / "old-home"
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(home))
    old = os.umask(0o022)
    try:
        home.mkdir(mode=0o755)
        (home / "ledger.sqlite").touch(mode=0o644)
        (home / "store").mkdir(mode=0o755)
        os.chmod(home, 0o755)
        jp.publish(results, "local")
    finally:
        os.umask(old)
    assert _loose(home) == []


def test_serve_requires_its_token(results, tmp_path, isolated_home):
    with running_serve(isolated_home) as base:
        assert stat.S_IMODE((isolated_home / "serve.json").stat().st_mode) == 0o600
        result = jp.publish(results, "local", archive=False)
        record = next(f for f in result.files if f.path == "a.csv")
        assert record.url == f"{base}/{result.job_id}/a.csv"  # the recorded link works
        assert hashlib.sha256(httpx.get(record.url).content).hexdigest() == record.sha256
        port_root, token = base.rsplit("/", 1)
        by_query = f"{port_root}/{result.job_id}/a.csv?token={token}"
        assert httpx.get(by_query).status_code == 200
        for bare in (f"{port_root}/{result.job_id}/a.csv", f"{port_root}/{'x' * 43}/{result.job_id}/a.csv"):
            assert httpx.get(bare).status_code == 403
            assert httpx.head(bare).status_code == 403
        assert jp.fetch(record.url, tmp_path / "via-http").verified
    assert _loose(isolated_home) == []
    assert Ledger().result(result.job_id).files  # the ledger still reads after serve stopped
