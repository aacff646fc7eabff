"""Dedup's question to a catalog's cache, "which records list a file of this size?", is an
indexed lookup: records cached before the index existed are indexed once, on first use;
only matching, untampered records come back (and are verified when parsed)."""

from __future__ import annotations

from jupyter_publish.catalog import cached_results, parse, records
from jupyter_publish.catalog.cache import CachedRecord, CatalogCache
from jupyter_publish.ledger import Ledger


def _record(job_id: str, sizes: list[int]) -> tuple[str, bytes]:
    files = [
        {
            "path": f"f{n}.bin",
            "size": size,
            "sha256": "ab" * 32,
            "cid": None,
            "kind": "file",
            "location": None,
        }
        for n, size in enumerate(sizes)
    ]
    result = {
        "Type": "s3", "Params": {}, "job_id": job_id, "execution_id": "e", "node_id": "n",
        "destination": "s3://b/", "uri": f"s3://b/{job_id}/", "manifest": files, "archive": None,
    }  # fmt: skip
    return records.make({"job_id": job_id, "status": "published", "job": {}, "result": result})


def _cached(name: str, data: bytes, sizes: frozenset[int] | None = None) -> CachedRecord:
    parsed = records.parse_name(name)
    assert parsed is not None
    return CachedRecord(
        name, parsed.job_id, parsed.sha256, len(data), "published", None, None, data, sizes=sizes
    )


def test_only_records_listing_a_wanted_size_are_read(tmp_path):
    ledger = Ledger()
    location = parse(tmp_path / "catalog")
    cache = CatalogCache(ledger, location.ident)
    old = [_record(f"j-old{n}", [1000 + n, 5]) for n in range(50)]  # cached by an older version: no sizes
    new = [_record(f"j-new{n}", [2000 + n]) for n in range(50)]
    failed_name, failed = records.make({"job_id": "j-failed", "status": "failed", "job": {}, "result": None})
    cache.store([_cached(n, d) for n, d in old], None)
    cache.store([_cached(n, d, frozenset({2000 + i})) for i, (n, d) in enumerate(new)], None)
    cache.store([_cached(failed_name, failed, frozenset())], None)

    found = cached_results(location, ledger, {1007, 2003, 999_999})
    assert sorted(r.job_id for r in found) == ["j-new3", "j-old7"]
    assert sorted(r.job_id for r in cached_results(location, ledger, {5})) == sorted(
        f"j-old{n}" for n in range(50)
    )
    assert cached_results(location, ledger, set()) == []
    assert len(cached_results(location, ledger)) == 100  # no sizes: every published result

    cache.mark(records.parse_name(old[7][0]).name, "it changed after it was read")  # type: ignore[union-attr]
    assert [r.job_id for r in cached_results(location, ledger, {1007, 2003})] == ["j-new3"]


def test_a_lookup_among_5000_records_reads_none_of_the_others(tmp_path, monkeypatch):
    ledger = Ledger()
    location = parse(tmp_path / "catalog")
    made = [_record(f"j-{n}", [10_000 + n]) for n in range(5000)]
    CatalogCache(ledger, location.ident).store([_cached(n, d) for n, d in made], None)
    cached_results(location, ledger, {1})  # indexes them once
    verified: list[str] = []
    real = records.verify
    monkeypatch.setattr(records, "verify", lambda key, data: verified.append(key) or real(key, data))
    (found,) = cached_results(location, ledger, {10_042})
    assert found.job_id == "j-42" and len(verified) == 1
