"""``fetch(verify=False)`` / ``--no-verify`` never reports ``verified``.

The stored bytes are changed after the publish (same length), then fetched without
verification: the bytes differ from the ledger, and the API, the command line's JSON
and text, and the result card all say the result is not verified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fake_drops import FakeServer, Store

import jupyter_publish as jp
from jupyter_publish.cards import fetch_card


@pytest.fixture
def tampered(tmp_path):
    """A published job whose stored bytes were then changed; yields (job ID, drop)."""

    def make(archive: bool) -> str:
        root = tmp_path / "results"
        root.mkdir(exist_ok=True)
        (root / "a.csv").write_text("x,y\n1,2\n")
        (root / "b.txt").write_text("hello\n")
        result = jp.publish(root, f"{drop.url}/drop/", archive=archive, compression="none")
        for key, data in store.objects.items():
            store.objects[key] = data.replace(b"x,y\n1,2\n", b"x,y\n9,9\n")
        return result.job_id

    store = Store()
    drop = FakeServer(store, "drop")
    try:
        yield make
    finally:
        drop.close()


def test_api_and_card_say_not_verified(tampered, tmp_path):
    job = tampered(False)
    fetched = jp.fetch(job, tmp_path / "back", verify=False)
    assert (tmp_path / "back" / "a.csv").read_text() != "x,y\n1,2\n"  # the bytes differ
    assert fetched.verified is False
    assert all(f.verified_against is None for f in fetched.files)
    assert "NOT verified (--no-verify)" in str(fetched)
    card = fetch_card(fetched)
    assert "not verified" in json.dumps(card)


def test_archive_member_not_claimed_verified(tampered, tmp_path):
    job = tampered(True)  # an uncompressed tar: one member changed, same length
    fetched = jp.fetch(job, tmp_path / "back", verify=False)
    assert (tmp_path / "back" / "a.csv").read_text() == "x,y\n9,9\n"
    assert fetched.verified is False
    assert all(f.verified_against is None for f in fetched.files)


def test_cli_no_verify_json(tampered, tmp_path, isolated_home):
    job = tampered(False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_publish.cli",
            "fetch",
            job,
            "--to",
            str(tmp_path / "c"),
            "--no-verify",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "JUPYTER_PUBLISH_HOME": str(isolated_home)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is False
    assert all(f["verified_against"] is None for f in report["files"])
