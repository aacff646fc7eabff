"""Send only new bytes, without a server: the publisher's decision (candidates, proof,
copy or upload) through a memory store that can copy, the S3 proof arithmetic, the
ledger's lookup, and the counts every result carries."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any, ClassVar

import pytest
from memory_backend import STORES, MemoryBackend, split

import jupyter_publish as jp
from jupyter_publish import backends, dedup
from jupyter_publish.backends.base import CopiesExisting, CopyProof, StoredObject, Upload
from jupyter_publish.backends.s3 import (
    S3Backend,
    _buffered_parts,
    _composite,
    _CopyProver,
    _file_parts,
    _holds,
    _PartSums,
)
from jupyter_publish.ledger import Ledger
from jupyter_publish.results import FileRecord, PublishedResult

MiB = 1024 * 1024


class _Counter:
    def __init__(self) -> None:
        self.bytes = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.bytes += len(data)

    def facts(self) -> dict[str, Any]:
        return {"bytes": self.bytes}


class CopyingMemory(MemoryBackend):
    """The memory store plus a server-side copy: it checks the source's bytes itself."""

    copies: ClassVar[list[tuple[str, str]]] = []
    asked: ClassVar[list[str]] = []
    refuse = False

    def copy_scope(self) -> tuple[str, dict[str, Any]]:
        return f"mem://{self.store}/", {}

    def copy_prover(self, size: int | None) -> _Counter:
        return _Counter()

    def copy_existing(self, upload: Upload, source: str, proof: CopyProof) -> StoredObject | None:
        CopyingMemory.asked.append(source)
        store, key = split(source)
        held = STORES.get(store, {}).get(key)
        if self.refuse or held is None or hashlib.sha256(held).hexdigest() != proof.sha256:
            return None
        assert proof.facts == {"bytes": proof.size}  # the prover saw the same bytes
        target = self._key(upload.name)
        STORES[self.store][target] = held
        CopyingMemory.copies.append((source, target))
        return StoredObject(upload.name, f"mem://{self.store}/{target}")


@pytest.fixture
def mem(monkeypatch):
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_CLASSES", dict(backends._CLASSES))
    STORES.clear()
    CopyingMemory.copies = []
    CopyingMemory.asked = []
    CopyingMemory.refuse = False
    jp.register_backend("mem", CopyingMemory, clobber=True)
    yield STORES
    STORES.clear()


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    root.mkdir()
    (root / "big.bin").write_bytes(hashlib.shake_256(b"big").digest(3 * MiB))
    (root / "small.txt").write_text("a small file is always sent\n")
    return root


def _proofs(monkeypatch) -> list[Path]:
    """Record each local proof pass (the real one runs)."""
    calls: list[Path] = []
    real = dedup.prove_file

    def counted(path: Path, *args: Any) -> Any:
        calls.append(path)
        return real(path, *args)

    monkeypatch.setattr(dedup, "prove_file", counted)
    return calls


def test_the_capability_is_declared_by_s3_only() -> None:
    assert isinstance(S3Backend(bucket="b"), CopiesExisting)
    assert not isinstance(MemoryBackend(), CopiesExisting)


def test_plain_publish_twice_copies_what_the_store_holds(mem, results, tmp_path, monkeypatch):
    proofs = _proofs(monkeypatch)
    first = jp.publish(results, "mem://s/{jobID}/", archive=False)
    assert (first.sent_bytes, first.copied_bytes) == (3 * MiB + 28, 0)
    assert proofs == []  # nothing of that size stored before: no extra read
    second = jp.publish(results, "mem://s/{jobID}/", archive=False)
    assert (second.sent_bytes, second.copied_bytes) == (28, 3 * MiB)
    assert CopyingMemory.copies == [(f"mem://s/{first.job_id}/big.bin", f"{second.job_id}/big.bin")]
    assert len(proofs) == 1
    assert {f.path: (f.sha256, f.cid) for f in second.files} == {
        f.path: (f.sha256, f.cid) for f in first.files
    }
    back = jp.fetch(f"mem://s/{second.job_id}/", tmp_path / "back")
    assert (tmp_path / "back" / "big.bin").read_bytes() == (results / "big.bin").read_bytes()
    assert len(back.files) == 2


def test_a_different_size_is_never_hashed_twice(mem, results, monkeypatch):
    proofs = _proofs(monkeypatch)
    jp.publish(results, "mem://s/{jobID}/", archive=False)
    (results / "big.bin").write_bytes(b"x" * (2 * MiB))
    second = jp.publish(results, "mem://s/{jobID}/", archive=False)
    assert proofs == [] and second.copied_bytes == 0 and second.sent_bytes == 2 * MiB + 28


def test_same_size_other_bytes_are_uploaded(mem, results, monkeypatch):
    proofs = _proofs(monkeypatch)
    jp.publish(results, "mem://s/{jobID}/", archive=False)
    (results / "big.bin").write_bytes(hashlib.shake_256(b"other").digest(3 * MiB))
    second = jp.publish(results, "mem://s/{jobID}/", archive=False)
    assert len(proofs) == 1  # proven different: no copy asked
    assert CopyingMemory.copies == [] and second.copied_bytes == 0
    assert STORES["s"][f"{second.job_id}/big.bin"] == (results / "big.bin").read_bytes()


def test_a_refused_copy_is_uploaded(mem, results):
    jp.publish(results, "mem://s/{jobID}/", archive=False)
    CopyingMemory.refuse = True
    second = jp.publish(results, "mem://s/{jobID}/", archive=False)
    assert second.copied_bytes == 0 and second.sent_bytes == 3 * MiB + 28
    assert STORES["s"][f"{second.job_id}/big.bin"] == (results / "big.bin").read_bytes()


def test_refusals_are_asked_a_few_times_only(mem, results):
    CopyingMemory.refuse = True
    for _ in range(5):
        jp.publish(results, "mem://s/{jobID}/", archive=False)
    # 0, 1, 2, 3, 3 proven candidates asked: never more than MAX_TRIES for one object
    assert len(CopyingMemory.asked) == 0 + 1 + 2 + 3 + 3 == 9
    assert dedup.MAX_TRIES == 3


def test_archive_publish_twice_copies_the_archive(mem, results, tmp_path):
    first = jp.publish(results, "mem://s/{jobID}/")
    assert first.archive is not None and first.sent_bytes == first.archive.size
    second = jp.publish(results, "mem://s/{jobID}/")
    assert second.archive is not None
    assert (second.sent_bytes, second.copied_bytes) == (0, first.archive.size)
    assert second.archive.sha256 == first.archive.sha256 and second.root_cid == first.root_cid
    assert [f.sha256 for f in second.files] == [f.sha256 for f in first.files]
    key = f"{second.job_id}/{second.archive.path}"
    assert hashlib.sha256(STORES["s"][key]).hexdigest() == second.archive.sha256
    # Another compression makes other bytes: never a candidate, uploaded.
    third = jp.publish(results, "mem://s/{jobID}/", compression="none")
    assert third.copied_bytes == 0


def test_archive_of_changed_bytes_is_uploaded(mem, results):
    jp.publish(results, "mem://s/{jobID}/")
    (results / "big.bin").write_bytes(hashlib.shake_256(b"other").digest(3 * MiB))
    second = jp.publish(results, "mem://s/{jobID}/")
    assert second.copied_bytes == 0 and second.archive is not None
    assert second.sent_bytes == second.archive.size


def test_a_store_that_cannot_copy_sends_everything(monkeypatch, results):
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_CLASSES", dict(backends._CLASSES))
    jp.register_backend("mem", MemoryBackend, clobber=True)
    jp.publish(results, "mem://plain/{jobID}/", archive=False)
    second = jp.publish(results, "mem://plain/{jobID}/", archive=False)
    assert (second.sent_bytes, second.copied_bytes) == (3 * MiB + 28, 0)


@pytest.mark.parametrize("archive", [True, False])
def test_the_local_store_counts_what_it_reads_and_keeps_each_blob_once(results, isolated_home, archive):
    """The local store deduplicates by itself (blobs named by sha256): nothing to copy."""
    first = jp.publish(results, archive=archive)
    second = jp.publish(results, archive=archive)
    expected = first.archive.size if first.archive else 3 * MiB + 28
    assert (first.sent_bytes, first.copied_bytes) == (expected, 0)
    assert (second.sent_bytes, second.copied_bytes) == (expected, 0)
    blobs = [p for p in (isolated_home / "store" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == (1 if archive else 2)


# -- the counts in results, cards, records --------------------------------------------------------


def _result(**extra: Any) -> PublishedResult:
    return PublishedResult(
        "j-1",
        "e-1",
        "n-1",
        "s3",
        "s3://b/k/",
        "s3://b/k/",
        {"Bucket": "b"},
        [],
        "2026-01-01T00:00:00Z",
        **extra,
    )


def test_str_and_card_show_the_counts_only_when_something_was_copied() -> None:
    sent_only = _result(sent_bytes=10, copied_bytes=0)
    assert "copied" not in str(sent_only) and "Transfer" not in sent_only._repr_html_()
    copied = _result(sent_bytes=1024, copied_bytes=256 * MiB)
    assert "sent 1.0 KiB, copied 256.0 MiB in the store" in str(copied)
    assert "copied 256.0 MiB" in copied._repr_html_()
    again = PublishedResult.from_dict(copied.to_dict())
    assert (again.sent_bytes, again.copied_bytes) == (1024, 256 * MiB)
    older = copied.to_dict()
    del older["sent_bytes"], older["copied_bytes"]
    assert PublishedResult.from_dict(older).copied_bytes is None


# -- S3: the proof arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 5, 5 * MiB, 5 * MiB + 1, 8 * MiB, 8 * MiB + 1, 10 * MiB, 21 * MiB])
def test_the_prover_computes_the_checksums_s3_reports_for_our_uploads(tmp_path, size):
    """The composite checksums of a file's parts and of a stream's, as ``put`` sends them."""
    data = hashlib.shake_256(b"p").digest(size) if size else b""
    path = tmp_path / "f"
    path.write_bytes(data)
    for known, parts in (
        (None, list(_buffered_parts(io.BytesIO(data), None, S3Backend._part_size))),
        (size, list(_file_parts(io.BytesIO(data), path, size, S3Backend._part_size))),
    ):
        prover = _CopyProver(known, S3Backend._part_size)
        for at in range(0, size, 3 * MiB + 7):  # any chunking
            prover.update(data[at : at + 3 * MiB + 7])
        expected = [f"{_composite(parts)}-{len(parts)}"] if len(parts) > 1 else []
        assert prover.facts()["composites"] == expected


def test_part_sums_of_a_custom_layout() -> None:
    sums = _PartSums(lambda n: 4)
    sums.update(b"abcdefghij")
    parts = [b"abcd", b"efgh", b"ij"]
    joined = b"".join(hashlib.sha256(p).digest() for p in parts)
    assert sums.composite() == f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-3"


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_holds_trusts_the_store_checksum_first() -> None:
    data = b"payload"
    sha = hashlib.sha256(data).hexdigest()
    proof = CopyProof(len(data), sha, {"composites": ["abc=-2"]})
    assert _holds({"ContentLength": 7, "ChecksumSHA256": _b64(data)}, proof)
    assert not _holds({"ContentLength": 8, "ChecksumSHA256": _b64(data)}, proof)
    # A whole checksum that differs is final, whatever the metadata claims.
    assert not _holds(
        {"ContentLength": 7, "ChecksumSHA256": _b64(b"other!!"), "Metadata": {"sha256": sha}}, proof
    )
    assert _holds({"ContentLength": 7, "ChecksumSHA256": "abc=-2"}, proof)
    # Parts laid out otherwise (another client's upload): our metadata, else no.
    assert _holds({"ContentLength": 7, "ChecksumSHA256": "zzz=-3", "Metadata": {"sha256": sha}}, proof)
    assert not _holds({"ContentLength": 7, "ChecksumSHA256": "zzz=-3"}, proof)
    assert not _holds({"ContentLength": 7}, proof)


# -- the ledger's lookup -------------------------------------------------------------------------


def _record(
    ledger: Ledger, job_id: str, location: str, endpoint: str | None, status: str = "published"
) -> None:
    ledger.start(job_id=job_id, execution_id="e", node_id="n", name="r", scheme="s3", destination=location)
    params = {"Bucket": location.split("/")[2], **({"Endpoint": endpoint} if endpoint else {})}
    files = [
        FileRecord("big.bin", 3 * MiB, "a" * 64, "Qm", "file", location),
        FileRecord("in/archive.bin", 3 * MiB, "b" * 64, "Qm", "file", f"{location}.tar.gz#in/archive.bin"),
    ]
    result = PublishedResult(
        job_id, "e", "n", "s3", location, location, params, files, "2026-01-01T00:00:00Z"
    )
    if status == "published":
        ledger.finish(result)
    else:
        ledger.fail(job_id, "boom")


def test_candidates_are_objects_of_that_size_in_that_bucket_at_that_endpoint() -> None:
    ledger = Ledger()
    _record(ledger, "j-1", "s3://b1/x/big.bin", "http://127.0.0.1:9000")
    _record(ledger, "j-2", "s3://b1/y/big.bin", "http://127.0.0.1:9000/")  # the same endpoint
    _record(ledger, "j-3", "s3://b1/z/big.bin", "http://127.0.0.1:9001")  # another one
    _record(ledger, "j-4", "s3://b2/x/big.bin", "http://127.0.0.1:9000")  # another bucket
    _record(ledger, "j-5", "s3://b1/f/big.bin", "http://127.0.0.1:9000", status="failed")
    _record(ledger, "j-6", "s3://b1_/x/big.bin", "http://127.0.0.1:9000")  # a LIKE wildcard in a name
    backend = S3Backend(bucket="b1", endpoint="http://127.0.0.1:9000")
    found = dedup.file_candidates(ledger, backend, [3 * MiB, 5])
    assert list(found) == [3 * MiB]
    assert [c.location for c in found[3 * MiB]] == ["s3://b1/y/big.bin", "s3://b1/x/big.bin"]
    assert all(c.sha256 == "a" * 64 for c in found[3 * MiB])  # never an archive member
    aws = S3Backend(bucket="b1")
    _record(ledger, "j-7", "s3://b1/aws/big.bin", None)
    assert [c.job_id for c in dedup.file_candidates(ledger, aws, [3 * MiB])[3 * MiB]] == ["j-7"]


def test_records_of_a_catalog_join_the_ledger_candidates() -> None:
    """A shared catalog's cached job records are candidates too (``records=``)."""
    ledger = Ledger()
    _record(ledger, "j-1", "s3://b1/x/big.bin", "http://127.0.0.1:9000")
    files = [FileRecord("big.bin", 3 * MiB, "c" * 64, "Qm", "file", "s3://b1/other/big.bin")]
    params = {"Bucket": "b1", "Endpoint": "http://127.0.0.1:9000"}
    theirs = PublishedResult("j-9", "e", "n", "s3", "s3://b1/other/", "s3://b1/other/", params, files, "t")
    elsewhere = PublishedResult(
        "j-8",
        "e",
        "n",
        "s3",
        "s3://b1/o/",
        "s3://b1/o/",
        {"Bucket": "b1", "Endpoint": "http://x:1"},
        files,
        "t",
    )
    backend = S3Backend(bucket="b1", endpoint="http://127.0.0.1:9000")
    found = dedup.file_candidates(ledger, backend, [3 * MiB], records=[theirs, elsewhere])
    assert [(c.job_id, c.sha256[0]) for c in found[3 * MiB]] == [("j-1", "a"), ("j-9", "c")]


def test_a_small_archive_is_sent_not_compared(mem, tmp_path, monkeypatch):
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "a.txt").write_text("tiny\n")
    compared: list[str] = []
    monkeypatch.setattr(dedup, "archive_candidates", lambda *a, **k: compared.append("x") or [])
    jp.publish(folder, "mem://s/{jobID}/")
    second = jp.publish(folder, "mem://s/{jobID}/")
    assert compared == [] and second.copied_bytes == 0 and second.sent_bytes == second.archive.size
