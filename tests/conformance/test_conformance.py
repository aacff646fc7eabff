"""One contract, every backend: publish, fetch back verified, refuse tampering, resume,
odd names, empty folders, publishes at once. Each runs against the backend's real server.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conformance_case import FETCH_PLAIN_BY_URI, RESUME, BackendCase
from trees import tree

import jupyter_publish as jp
from jupyter_publish.backends import backend_class, known_schemes, register_backend
from jupyter_publish.cid import cid_of
from jupyter_publish.errors import IntegrityError, PublishError
from jupyter_publish.hashing import hash_file
from jupyter_publish.progress import listening

ARCHIVE = pytest.mark.parametrize("archive", [False, True], ids=["plain", "archive"])


def make_tree(root: Path, entries: dict[str, bytes | None]) -> Path:
    for name, data in entries.items():
        path = root / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A small tree; random bytes so no two tests share content (or a CID)."""
    return make_tree(
        tmp_path / "results",
        {
            "table.csv": b"step,loss\n1,0.5\n2,0.25\n",
            "plots/fig.bin": os.urandom(3000),
            "logs/run/stdout": b"epoch 1\nepoch 2\n" + os.urandom(16).hex().encode(),
        },
    )


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text.strip() and "\n" not in text.strip() and "Traceback" not in text, text
    return text


# -- the registry ------------------------------------------------------------------


def canonical_schemes() -> set[str]:
    """Registered schemes minus aliases (``https`` is the http backend's)."""
    return {getattr(backend_class(s), "scheme", s) for s in known_schemes()}


def missing_descriptors(descriptors) -> list[str]:
    return sorted(canonical_schemes() - set(descriptors))


def test_every_registered_backend_has_a_descriptor(descriptors):
    assert missing_descriptors(descriptors) == []
    assert set(descriptors) <= canonical_schemes(), "a descriptor for a scheme nobody registered"


def test_a_new_backend_without_a_descriptor_is_reported(descriptors, monkeypatch):
    from jupyter_publish import backends

    class MemoryBackend:
        scheme = "mem"

    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    register_backend("mem", MemoryBackend)
    assert missing_descriptors(descriptors) == ["mem"]


# -- publish and fetch -------------------------------------------------------------


@ARCHIVE
def test_publish_records_every_file(backend_case: BackendCase, results, archive):
    result = backend_case.publish(results, archive=archive)
    assert result.type == backend_case.result_type
    assert result.job_id.startswith("j-") and result.uri
    files = {f.path: f for f in result.files if f.kind == "file"}
    assert set(files) == {"table.csv", "plots/fig.bin", "logs/run/stdout"}
    for name, record in files.items():
        digest = hash_file(str(results / name))
        assert (record.sha256, record.size) == (digest.sha256, digest.size)
        assert record.cid == cid_of(results / name)
    assert result.root_cid == cid_of(results)
    assert (result.archive is not None) is archive
    [job] = [j for j in jp.jobs().to_dict("records") if j["job_id"] == result.job_id]
    assert job["status"] == "published"


@ARCHIVE
def test_fetch_by_job_id_gives_back_the_tree(backend_case: BackendCase, results, tmp_path, archive):
    result = backend_case.publish(results, archive=archive)
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified and back.job_id == result.job_id
    assert tree(tmp_path / "back") == tree(results)
    assert all(f.verified_against for f in back.files)


@ARCHIVE
def test_fetch_by_uri_gives_back_the_tree(backend_case: BackendCase, results, tmp_path, archive):
    result = backend_case.publish(results, archive=archive)
    dest = tmp_path / "back"
    if not archive and not backend_case.supports(FETCH_PLAIN_BY_URI):
        with pytest.raises(PublishError) as info:
            jp.fetch(result.uri, dest, **backend_case.fetch_options)
        assert "job ID" in one_line(info.value), backend_case.unsupported[FETCH_PLAIN_BY_URI]
        return
    back = jp.fetch(result.uri, dest, **backend_case.fetch_options)
    assert back.verified  # the ledger knows what that URI should hold
    assert tree(dest) == tree(results)


@ARCHIVE
def test_fetch_by_result_object(backend_case: BackendCase, results, tmp_path, archive):
    result = backend_case.publish(results, archive=archive)
    back = jp.fetch(jp.PublishedResult.from_dict(result.to_dict()), tmp_path / "back")
    assert back.verified
    assert tree(tmp_path / "back") == tree(results)


# -- tampering ---------------------------------------------------------------------


@ARCHIVE
def test_tampered_content_is_refused(backend_case: BackendCase, results, tmp_path, archive):
    result = backend_case.publish(results, archive=archive)
    record = result.archive if archive else next(f for f in result.files if f.path == "plots/fig.bin")
    assert record is not None
    options = backend_case.tamper(result, record)
    dest = tmp_path / "back"
    with pytest.raises(IntegrityError) as info:
        jp.fetch(result.job_id, dest, **options)
    # Named by what it should have been (IPFS: the hostile node garbles every object).
    message = one_line(info.value)
    published = [r for r in (*result.files, result.archive) if r is not None and r.kind != "dir"]
    assert any(r.sha256 in message or (r.cid and r.cid in message) for r in published), message
    assert not dest.exists() or not any(dest.rglob("*")), "unverified bytes were kept"
    assert not list(tmp_path.glob(".back.jp-partial*")), "unverified bytes were staged for a resume"


def test_fetch_without_verify_takes_tampered_bytes_but_claims_nothing(backend_case, results, tmp_path):
    result = backend_case.publish(results, archive=False)
    record = next(f for f in result.files if f.path == "table.csv")
    options = backend_case.tamper(result, record)
    back = jp.fetch(result.job_id, tmp_path / "back", verify=False, **options)
    assert not back.verified
    got = (tmp_path / "back" / "table.csv").read_bytes()
    assert len(got) == record.size and got != (results / "table.csv").read_bytes()


# -- resume ------------------------------------------------------------------------


def _interrupt_halfway(total: int):
    """Ctrl-C once more than half of the bytes were read: with one transfer at a time,
    while the second of two equal files is being sent (the first one is stored)."""

    def listener(done: int, _total: int | None) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    return listening(listener)


@ARCHIVE
def test_an_interrupted_publish_resumes_under_its_job_id(backend_case, tmp_path, archive):
    from jupyter_publish.ledger import Ledger
    from jupyter_publish.publisher import resume_job

    size = 200_000
    src = make_tree(tmp_path / "src", {"a.bin": os.urandom(size), "b.bin": os.urandom(size)})
    with _interrupt_halfway(2 * size), pytest.raises(KeyboardInterrupt):
        backend_case.publish(src, archive=archive, max_concurrency=1)
    [job] = Ledger().jobs()
    assert job["status"] == "failed" and "interrupted" in job["error"]
    if not backend_case.supports(RESUME):
        with pytest.raises(PublishError) as info:
            jp.resume(job["job_id"], **backend_case.options)
        assert "publish again" in one_line(info.value), backend_case.unsupported[RESUME]
        assert job["job_id"] in str(info.value)
        return
    result, journal = resume_job(job["job_id"], **backend_case.options)
    assert result.job_id == job["job_id"]
    assert [j["status"] for j in Ledger().jobs()] == ["published"]
    if backend_case.resume_counts_skipped and not archive:
        assert journal.skipped == 1, journal.summary()  # a.bin was complete: verified, not sent
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified and tree(tmp_path / "back") == tree(src)


# -- names and folders -------------------------------------------------------------

ODD_NAMES: dict[str, bytes | None] = {
    "with space.txt": b"space",
    "dir with space/inner file.csv": b"a,b\n",
    "ünïcödé/naïve café.txt": "crème brûlée".encode(),
    "日本語/ファイル.txt": "テキスト".encode(),
    "emoji 🎉.txt": b"party",
    "percent%20literal.txt": b"not a space",
    "plus+and&amp.txt": b"plus",
}


@ARCHIVE
def test_names_with_spaces_and_unicode_round_trip(backend_case, tmp_path, archive):
    src = make_tree(tmp_path / "src", {**ODD_NAMES, "nonce.bin": os.urandom(64)})
    result = backend_case.publish(src, archive=archive)
    assert {f.path for f in result.files if f.kind == "file"} == {*ODD_NAMES, "nonce.bin"}
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    assert tree(tmp_path / "back") == tree(src)


EMPTY_FOLDERS = ("empty", "nested/empty/deeper", "data/also-empty")


@ARCHIVE
def test_empty_folders_are_kept(backend_case, tmp_path, archive):
    src = make_tree(
        tmp_path / "src",
        {"data/table.csv": os.urandom(100), **dict.fromkeys(EMPTY_FOLDERS)},
    )
    result = backend_case.publish(src, archive=archive)
    assert set(EMPTY_FOLDERS) <= {f.path for f in result.files if f.kind == "dir"}
    assert result.root_cid == cid_of(src)  # empty folders are part of the root CID
    back = jp.fetch(result.job_id, tmp_path / "back")
    assert back.verified
    assert tree(tmp_path / "back") == tree(src)


# -- at the same time --------------------------------------------------------------


def test_two_publishes_at_once_both_land(backend_case, tmp_path):
    sources = [
        make_tree(tmp_path / f"src{i}", {"same-name.bin": os.urandom(50_000), f"only-{i}.txt": b"%d" % i})
        for i in range(2)
    ]
    start = threading.Barrier(2)

    def publish(src: Path):
        start.wait(timeout=30)
        return backend_case.publish(src, archive=False)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(publish, sources))
    assert results[0].job_id != results[1].job_id
    for i, (src, result) in enumerate(zip(sources, results, strict=True)):
        back = jp.fetch(result.job_id, tmp_path / f"back{i}")
        assert back.verified
        assert tree(tmp_path / f"back{i}") == tree(src)
    assert {j["status"] for j in jp.jobs().to_dict("records")} == {"published"}


def test_two_processes_publishing_at_once_both_land(backend_case, tmp_path):
    """Two command lines share one ledger (and one local store): both jobs are recorded."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    flags = [f"--{name}={value}" for name, value in backend_case.options.items()]
    sources = [make_tree(tmp_path / f"src{i}", {"data.bin": os.urandom(50_000)}) for i in range(2)]
    command = [sys.executable, "-m", "jupyter_publish.cli", "publish"]
    processes = [
        subprocess.Popen(
            [*command, str(src), "--to", backend_case.to, *flags, "--no-archive", "--json", "-q"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for src in sources
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    job_ids = [json.loads(out)["job_id"] for out, _ in outputs]
    assert len(set(job_ids)) == 2
    for i, (src, job_id) in enumerate(zip(sources, job_ids, strict=True)):
        back = jp.fetch(job_id, tmp_path / f"back{i}")
        assert back.verified
        assert tree(tmp_path / f"back{i}") == tree(src)
