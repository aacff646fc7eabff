"""Attacks on issue 12: the team catalog, provenance, lineage, dedup by server-side copy,
and the RO-Crate export. Anyone who may write to a team's catalog may write a record (that
is the trust model): such a record must be refused or shown, never break the listing, a
fetch or a publish of everyone else."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hostile import claiming_result

import jupyter_publish as jp
from jupyter_publish.catalog import open_catalog, records
from jupyter_publish.cli import main
from jupyter_publish.ids import ulid


def plant(shared: Path, data: bytes, job_id: str = "j-evil") -> str:
    """A record as a hostile colleague writes it: its name proves its own bytes."""
    name = f"{ulid()}.{job_id}.{hashlib.sha256(data).hexdigest()}.json"
    (shared / "records" / name).write_bytes(data)
    return name


def hostile_body(job_id: str = "j-evil", written: str = "", **fields: object) -> tuple[str, str]:
    """``(record_id, JSON text)`` of a record body with the right format, ID and job."""
    written = written or ulid()
    body = {"format": records.FORMAT, "job_id": job_id, "record_id": written, "status": "failed"}
    return written, json.dumps({**body, **fields})


def plant_body(shared: Path, text: str | bytes, written: str, job_id: str = "j-evil") -> str:
    data = text.encode() if isinstance(text, str) else text
    name = f"{written}.{job_id}.{hashlib.sha256(data).hexdigest()}.json"
    (shared / "records" / name).write_bytes(data)
    return name


def lists_fine(shared: Path, capsys: pytest.CaptureFixture[str], good: str) -> None:
    """The API, the command line and a fetch of a good job still work around it."""
    assert good in set(jp.jobs(catalog=str(shared))["job_id"])
    assert main(["jobs", "--catalog", str(shared)]) == 0
    assert good in capsys.readouterr().out


# -- hostile records ---------------------------------------------------------------------


def _deep(written: str) -> bytes:
    head = f'{{"format":"{records.FORMAT}","job_id":"j-evil","record_id":"{written}","job":'
    return head.encode() + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _utf16(written: str) -> bytes:
    return hostile_body(written=written)[1].encode("utf-16")


def _surrogate(written: str) -> bytes:
    return hostile_body(written=written, job={"name": "\ud800"})[1].encode()  # JSON escapes it


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda w: b"[" * 200_000 + b"]" * 200_000, id="nested-past-the-stack"),
        pytest.param(_deep, id="a-record-nested-past-the-stack"),
        pytest.param(_utf16, id="utf-16"),
        pytest.param(_surrogate, id="lone-surrogate"),
        pytest.param(
            lambda w: (
                f'{{"format":"{records.FORMAT}","job_id":"j-evil","record_id":"{w}","status":"failed",'
                f'"status":"published"}}'
            ).encode(),
            id="duplicate-keys",
        ),
    ],
)
def test_one_hostile_record_never_breaks_the_listing_for_everyone(shared, tmp_path, capsys, make):
    """Deep nesting raised RecursionError out of every listing; a UTF-16 record was
    verified (json.loads guesses encodings) then crashed the pack a reader writes; a lone
    surrogate was cached and then crashed ``jobs()`` and the CLI printing it. Each broke
    ``jobs --catalog`` for the whole team, at every listing, until deleted by hand."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    good = jp.publish(tmp_path / "r", catalog=str(shared)).job_id
    written = ulid()
    bad = plant_body(shared, make(written), written)
    for i in range(300):  # enough records unread by anyone for a reader to write a pack
        w, text = hostile_body(f"j-filler{i}")
        plant_body(shared, records.encode(json.loads(text)), w, f"j-filler{i}")
    with open_catalog(str(shared)) as cat:
        report = cat.sync()
    assert bad in report.refused
    assert report.packed is not None
    lists_fine(shared, capsys, good)
    with pytest.raises(records.TamperedRecordError):
        jp.fetch("j-evil", tmp_path / "out", catalog=str(shared))


# -- hostile results in records ----------------------------------------------------------


def _forge(shared: Path, result: dict[str, object], job_id: str = "j-evil") -> str:
    """A record, written by a colleague's own hand, claiming ``result`` for ``job_id``."""
    name, data = records.make({"job_id": job_id, "status": "published", "job": {}, "result": result})
    (shared / "records" / name).write_bytes(data)
    return name


@pytest.mark.parametrize(
    "result",
    [
        pytest.param({"job_id": "j-evil"}, id="no-fields"),
        pytest.param(
            {"job_id": "j-evil", "execution_id": "e", "Type": "s3", "uri": 5, "manifest": [{"path": 1}]},
            id="wrong-types",
        ),
        pytest.param(
            {
                "job_id": "j-evil",
                "execution_id": "e",
                "Type": "s3",
                "uri": "s3://b/k/",
                "Params": {"Endpoint": None},
                "manifest": [{"path": "w.bin", "size": 2 << 20, "sha256": "ab" * 32, "location": 7}],
            },
            id="a-location-that-is-no-text",
        ),
    ],
)
def test_a_record_whose_result_is_no_result_is_refused_not_raised(shared, tmp_path, capsys, result):
    """``Catalog.results()`` (what lineage and dedup read) raised KeyError on a record whose
    result lacked a field: ``jp.lineage(catalog=…)`` and every S3 publish of a large file
    with that catalog failed; a fetch of it gave a traceback, not a one-line refusal."""
    from jupyter_publish import dedup
    from jupyter_publish.catalog import cached_results
    from jupyter_publish.errors import PublishError
    from jupyter_publish.ledger import Ledger

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    good = jp.publish(tmp_path / "r", catalog=str(shared)).job_id
    _forge(shared, result)
    lists_fine(shared, capsys, good)
    assert jp.lineage(good, catalog=str(shared)) is not None
    found = cached_results(str(shared), Ledger())
    assert [r.job_id for r in found] == [good]
    dedup.files_in(found, {2 << 20}, "s3://b/", {"Endpoint": None})
    with pytest.raises(PublishError, match="j-evil"):
        jp.fetch("j-evil", tmp_path / "out", catalog=str(shared))


# -- dedup: a colleague's record and object -----------------------------------------------


@pytest.mark.servers
def test_a_forged_record_and_sha256_metadata_never_make_a_publish_copy_other_bytes(
    s3_env, s3_bucket, shared, tmp_path
):
    """A colleague who may write to the bucket and the catalog PUTs an object of other
    bytes of the same size whose ``x-amz-meta-sha256`` claims the sha256 of a file we are
    about to publish (no S3 checksum: metadata is all a HEAD shows), and a record placing
    that sha256 there. The HEAD-then-copy believed the metadata: our job recorded our
    sha256 for an object holding their bytes (anyone reading it by its URL got them)."""
    import os

    from jupyter_publish.ledger import Ledger

    mine = tmp_path / "mine"
    mine.mkdir()
    data = os.urandom(2 << 20)
    (mine / "weights.bin").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    client = s3_env.client()
    client.put_object(
        Bucket=s3_bucket, Key="evil/weights.bin", Body=os.urandom(2 << 20), Metadata={"sha256": sha}
    )
    # Their record, shaped as a publish to this bucket writes it.
    shape = claiming_result(tmp_path, s3_bucket, sha)
    _forge(shared, shape)
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        cat.sync()
    result = jp.publish(mine, f"s3://{s3_bucket}/runs/{{jobID}}/", archive=False, catalog=str(shared))
    (stored,) = [f for f in result.files if f.path == "weights.bin"]
    assert stored.sha256 == sha
    body = client.get_object(Bucket=s3_bucket, Key=f"runs/{result.job_id}/weights.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha, "the published object is not the bytes recorded"
    assert result.copied_bytes == 0
    # A colleague's genuine object (S3's own checksum vouches for it) is still copied.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "colleague"))
        with open_catalog(str(shared), ledger=Ledger()) as cat:
            cat.sync()
        again = jp.publish(mine, f"s3://{s3_bucket}/runs/{{jobID}}/", archive=False, catalog=str(shared))
    assert again.copied_bytes == 2 << 20


# -- hostile packs -------------------------------------------------------------------------


def _plant_pack(shared: Path, chunks: list[bytes] | bytes, count: int = 1) -> str:
    import zlib

    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [chunks] if isinstance(chunks, bytes) else chunks
    data = b"".join(deflate.compress(c) for c in parts) + deflate.flush()
    first = ulid()
    name = f"{first}-{first}.{count}.json.gz"
    (shared / "packs").mkdir(exist_ok=True)
    (shared / "packs" / name).write_bytes(data)
    return name


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 200_000 + b"]" * 200_000, id="nested-past-the-stack"),
        pytest.param(
            b'{"format":"jupyter-publish.catalog-pack/1","records":{"x":"\\ud800"},"unread":[]}',
            id="lone-surrogate",
        ),
    ],
)
def test_a_hostile_pack_is_ignored_not_raised(shared, tmp_path, capsys, raw):
    """A pack nested past the stack raised RecursionError, one holding a lone surrogate
    UnicodeEncodeError, out of every cold reader's listing."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.txt").write_text("a")
    good = jp.publish(tmp_path / "r", catalog=str(shared)).job_id
    _plant_pack(shared, raw)
    lists_fine(shared, capsys, good)


def test_gzip_bomb_packs_are_read_one_at_a_time_within_a_bound(shared, tmp_path):
    """Packs of zeros that unpack to 600 MiB each, read 32 at once and each unpacked up to
    1 GiB: a cold reader's memory grew by GiBs per hostile pack (three took ~2 GiB; a few
    dozen, anything). Now one pack is unpacked at a time, to at most 256 MiB."""
    import subprocess
    import sys

    for _ in range(3):
        _plant_pack(shared, [b"\x00" * (1 << 20)] * 600)
    script = (
        "import resource, sys\n"
        "from jupyter_publish.catalog import open_catalog\n"
        "with open_catalog(sys.argv[1]) as cat:\n"
        "    cat.sync()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    env = {**__import__("os").environ, "JUPYTER_PUBLISH_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(shared)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 800, "peak RSS (MiB) of a cold reader of three bombs"
    assert "ignored" in done.stderr


def test_a_reader_with_more_than_one_pack_holds_leaves_a_prefix_and_a_cold_reader_misses_nothing(
    shared, tmp_path, monkeypatch
):
    """Packs are bounded (so every pack is readable under the bomb limits): a reader with
    more record bytes than one pack holds packs the oldest, and a cold reader after it
    still lists every record (it lists after the newest packed one)."""
    from jupyter_publish.catalog import packs
    from jupyter_publish.ledger import Ledger

    monkeypatch.setattr(packs, "MIN_RECORDS", 4)
    names = []
    for i in range(10):
        w, text = hostile_body(f"j-{i:02d}")
        names.append(plant_body(shared, records.encode(json.loads(text)), w, f"j-{i:02d}"))
    size = (shared / "records" / names[0]).stat().st_size
    monkeypatch.setattr(packs, "PACK_BUDGET", size * 6 + 1)
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        report = cat.sync()
    assert report.packed is not None and report.packed.split(".")[1] == "6"
    monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(tmp_path / "cold"))
    with open_catalog(str(shared), ledger=Ledger()) as cat:
        cold = cat.sync()
        assert cold.from_packs == 6 and {r["job_id"] for r in cat.rows()} == {f"j-{i:02d}" for i in range(10)}
