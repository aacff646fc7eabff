"""Fetch refuses what servers could abuse, and finds content where it was published."""

from __future__ import annotations

import hashlib
import json

import pytest

import jupyter_publish as jp
from jupyter_publish.backends.local import LocalBackend
from jupyter_publish.errors import IntegrityError, UnsafeArchiveError


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    (root / "run#1.csv").write_text("a,b\n1,2\n")
    (root / "notes.txt").write_text("first\n")
    return root


@pytest.mark.parametrize("name", ["../../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "C:evil"])
def test_names_from_the_store_cannot_leave_the_destination(results, tmp_path, name):
    result = jp.publish(results, archive=False)
    jobs = LocalBackend().root / "jobs" / f"{result.job_id}.json"
    entries = json.loads(jobs.read_text())
    entries[name] = entries.pop("notes.txt")  # a hostile store lists a climbing name
    jobs.write_text(json.dumps(entries))
    dest = tmp_path / "a" / "b"
    with pytest.raises(UnsafeArchiveError, match="refused"):
        jp.fetch(f"local://{result.job_id}/", dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "a").exists()


def test_names_with_a_hash_sign_round_trip(results, tmp_path):
    result = jp.publish(results, archive=False)
    assert jp.fetch(result.job_id, tmp_path / "back").verified
    assert (tmp_path / "back" / "run#1.csv").read_text() == "a,b\n1,2\n"


def test_forged_store_metadata_loses_to_the_ledger(s3_env, s3_bucket, results, tmp_path):
    result = jp.publish(results, f"s3://{s3_bucket}/forge/", archive=False)
    forged = b"first, but forged\n"
    s3_env.client().put_object(
        Bucket=s3_bucket,
        Key="forge/notes.txt",
        Body=forged,
        Metadata={"sha256": hashlib.sha256(forged).hexdigest()},
    )
    assert result.job_id
    with pytest.raises(IntegrityError):
        jp.fetch(f"s3://{s3_bucket}/forge/notes.txt", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_old_versions_stay_fetchable_by_job_id(s3_env, s3_versioned_bucket, results, tmp_path):
    first = jp.publish(results, f"s3://{s3_versioned_bucket}/same/", archive=False)
    (results / "notes.txt").write_text("second\n")
    second = jp.publish(results, f"s3://{s3_versioned_bucket}/same/", archive=False)
    jp.fetch(first.job_id, tmp_path / "one")
    jp.fetch(second.job_id, tmp_path / "two")
    assert (tmp_path / "one" / "notes.txt").read_text() == "first\n"
    assert (tmp_path / "two" / "notes.txt").read_text() == "second\n"


def test_ipfs_fetch_by_job_id_uses_the_node_it_was_published_to(ipfs_node, results, tmp_path, monkeypatch):
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.setenv("IPFS_PATH", str(tmp_path / "no-ipfs-here"))
    result = jp.publish(results, "ipfs://", archive=False, api=ipfs_node.api_url)
    assert jp.fetch(result.job_id, tmp_path / "back").verified


def test_a_registered_scheme_is_fetchable_verified(tmp_path):
    """register_backend makes ``mem://`` references fetch like the built-in ones."""
    from jupyter_publish.backends import RemoteObject, register_backend

    payload = b"in memory\n"

    class MemoryBackend:
        scheme = "mem"

        def __init__(self, **_options):
            pass

        def list(self, ref):
            return [
                RemoteObject("note.txt", ref, size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
            ]

        def read(self, location, offset=0):
            yield payload[offset:]

        def close(self):
            pass

    register_backend("mem", MemoryBackend, clobber=True)
    fetched = jp.fetch("mem://anything/note.txt", tmp_path / "mem")
    assert fetched.verified and (tmp_path / "mem" / "note.txt").read_bytes() == payload
