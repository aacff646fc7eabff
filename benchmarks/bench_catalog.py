"""The team catalog over an emulated WAN: listing 10,000 job records, cold and incremental.

Starts SeaweedFS (``weed mini``) on loopback, writes N job records to
``s3://bench/catalog/records/`` straight to the server (each the real record of a job with
a few files: ``catalog.records.make`` of a PublishedResult-shaped body, ~2 KB), then puts
``wan_proxy.py`` in front of its S3 port (its own process: D ms each way, R MB/s per TCP
connection). Through the proxy, each operation in a fresh process (own wall time and peak RSS):

* ``jobs(catalog=…)`` cold, first reader: a fresh ledger lists and GETs every record (32
  at once), verifies each (sha256 in its name, job ID), caches it, and leaves what it read
  as one pack object (``packs/``) for the next cold reader; the DataFrame has N rows;
* ``jobs(catalog=…)`` cold, next reader: another fresh ledger reads the pack, lists the
  records (the listing decides what exists) and GETs only what no pack holds;
* ``jobs(catalog=…)`` incremental: M more records were written since; the same ledger
  lists from the newest name it has (less the look-back window) and reads only the M;
* ``jobs(catalog=…)`` with nothing new: one listing request;
* what a user would write instead, at boto3's defaults: ``list_objects_v2`` pages, then
  ``get_object`` + ``json.loads`` of every record serially; and the same with a
  ``ThreadPoolExecutor(10)`` sharing one client (boto3's default pool is 10 connections).
  Neither verifies anything nor caches anything: the second listing costs as much again.

    python benchmarks/bench_catalog.py [--records 10000] [--new 100] [--delay-ms 10] [--rate-mbps 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pandas  # noqa: F401
from botocore.config import Config
from common import Row, Run, link_text, machine, remove, run_isolated, save_json, table
from wan_proxy import WanProxyProcess

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish.api
import jupyter_publish.catalog.catalog

BUCKET = "bench"
PREFIX = "catalog/"
CATALOG = f"s3://{BUCKET}/{PREFIX}"


# -- operations (each runs in its own child process; endpoint and keys come from the env) ------------


def ours_jobs(expected: int, home: str) -> dict[str, Any]:
    os.environ["JUPYTER_PUBLISH_HOME"] = home  # which machine's ledger (its cache)
    frame = jupyter_publish.api.jobs(catalog=CATALOG)
    if len(frame) != expected:
        raise SystemExit(f"jobs(catalog=…) listed {len(frame)} jobs, not {expected}")
    return {"rows": len(frame)}


def _client() -> Any:
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], config=config)


def _keys(client: Any) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "records/"):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def boto3_serial(expected: int, home: str = "") -> dict[str, Any]:
    client = _client()
    docs = [json.loads(client.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in _keys(client)]
    if len(docs) != expected:
        raise SystemExit(f"boto3 read {len(docs)} records, not {expected}")
    return {"rows": len(docs)}


def boto3_threads(expected: int, home: str = "") -> dict[str, Any]:
    client = _client()
    with ThreadPoolExecutor(10) as pool:
        docs = list(
            pool.map(
                lambda k: json.loads(client.get_object(Bucket=BUCKET, Key=k)["Body"].read()), _keys(client)
            )
        )
    if len(docs) != expected:
        raise SystemExit(f"boto3 read {len(docs)} records, not {expected}")
    return {"rows": len(docs)}


# -- the records -----------------------------------------------------------------------------------


def _body(i: int, now_ms: int) -> dict[str, Any]:
    """A published job's record as a publish writes it: three files, sha256s, CIDs."""
    from jupyter_publish.ids import encode_ulid

    job_id = "j-" + encode_ulid((now_ms - 10_000 + i) << 80 | i)
    files = [
        {
            "path": f"part-{n}.parquet",
            "size": 1000 + n,
            "sha256": f"{i:032x}{n:032x}",
            "cid": f"bafkrei{i:026d}{n:026d}",
            "kind": "file",
            "location": f"s3://{BUCKET}/runs/{job_id}/part-{n}.parquet",
            "url": None,
        }
        for n in range(3)
    ]
    result = {
        "Type": "s3",
        "Params": {"Bucket": BUCKET, "Key": f"runs/{job_id}/", "Endpoint": "http://127.0.0.1"},
        "job_id": job_id,
        "execution_id": "e-" + job_id[2:],
        "node_id": "n-0123456789ab",
        "name": "results",
        "destination": f"s3://{BUCKET}/runs/{{jobID}}/",
        "uri": f"s3://{BUCKET}/runs/{job_id}/",
        "url": None,
        "created_at": "2026-12-07T06:00:00.000Z",
        "root_cid": f"bafybei{i:052d}",
        "cid_version": 1,
        "archive": None,
        "manifest": files,
        "skipped": [],
        "cid_params": {},
        "provenance": {"python": "3.11.7", "host": "bench", "user": "bench"},
        "inputs": [],
        "sent_bytes": 3003,
        "copied_bytes": 0,
    }
    job = {
        "job_id": job_id, "name": "results", "status": "published", "type": "s3", "scheme": "s3",
        "destination": result["destination"], "uri": result["uri"], "url": None,
        "root_cid": result["root_cid"], "n_files": 3, "total_size": 3003,
        "created_at": result["created_at"], "finished_at": result["created_at"], "error": None,
        "execution_id": result["execution_id"], "node_id": result["node_id"],
    }  # fmt: skip
    return {
        "job_id": job_id,
        "status": "published",
        "written_at": result["created_at"],
        "user": "bench",
        "host": "bench",
        "tool": "jupyter-publish bench",
        "job": job,
        "result": result,
    }


def write_records(server: Any, first: int, count: int, spread_s: float) -> int:
    """``count`` records straight to SeaweedFS (not through the proxy); their total bytes.

    Their names are dated over the ``spread_s`` seconds up to now, as a team's records are
    over weeks (a listing looks back 15 minutes before the newest record it has).
    """
    from jupyter_publish.catalog import records

    client = server.client(config=Config(max_pool_connections=32, s3={"addressing_style": "path"}))
    now_ms = int(time.time() * 1000)
    step = int(spread_s * 1000 / max(count, 1))

    def put(i: int) -> int:
        written = now_ms - (first + count - i) * step
        name, data = records.make(_body(i, now_ms), now_ms=written)
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}records/{name}", Body=data)
        return len(data)

    with ThreadPoolExecutor(32) as pool:
        return sum(pool.map(put, range(first, first + count)))


# -- the benchmark ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="records in the catalog (default 10000)")
    parser.add_argument("--new", type=int, default=100, help="records added before the incremental listing")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (default 10)")
    parser.add_argument(
        "--rate-mbps", type=float, default=50.0, help="MB/s per connection (default 50; 0: none)"
    )
    parser.add_argument("--no-proxy", action="store_true", help="straight to SeaweedFS (loopback numbers)")
    parser.add_argument("--skip-serial", action="store_true", help="leave out boto3's serial loop (slow)")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)

    from jupyter_publish.testing.seaweed import SeaweedS3

    work = Path(tempfile.mkdtemp(prefix="jp-bench-catalog-"))
    print(f"# bench_catalog · {machine()}")
    server = SeaweedS3(work / "seaweed")
    server.start()
    proxy = None
    rows: list[Row] = []
    try:
        server.create_bucket(BUCKET)
        start = time.perf_counter()
        nbytes = write_records(server, 0, args.records, spread_s=30 * 86400)
        print(
            f"{args.records} records ({nbytes / 1e6:.1f} MB) written in {time.perf_counter() - start:.1f} s"
        )
        if not args.no_proxy:
            port = int(server.endpoint.rsplit(":", 1)[1])
            proxy = WanProxyProcess(("127.0.0.1", port), args.delay_ms, args.rate_mbps or None).start()
        url = proxy.url if proxy else server.endpoint
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
            os.environ.pop(name, None)
        env = {
            **server.credentials_env(),
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "JUPYTER_PUBLISH_QUIET": "1",
        }

        def measure(label: str, func: str, expected: int, home: str = "a") -> Run:
            before = proxy.stats() if proxy else None
            where = str(work / f"home-{home}")
            run = run_isolated(label, "bench_catalog", func, expected, where, nbytes=nbytes, env=env)
            if proxy and before:
                after = proxy.stats()
                run.link = {"connections": after["connections"] - before["connections"]}  # type: ignore[attr-defined]
            return run

        def add(group: str, run: Run, base: Run | None, count: int) -> None:
            link = getattr(run, "link", None)
            note = f"{count / run.wall:,.0f} records/s" + (f"; {link['connections']} conns" if link else "")
            rows.append(Row(group, run, base, note, dict(link or {})))

        total = args.records
        group = f"list {total} records, cold"
        boto_threads = measure("boto3 list + get ×10 threads", "boto3_threads", total)
        serial = None if args.skip_serial else measure("boto3 list + get serially", "boto3_serial", total)
        cold = measure("jobs(catalog=…) first reader", "ours_jobs", total, "a")
        packed = measure("jobs(catalog=…) next reader (pack)", "ours_jobs", total, "b")
        if serial:
            add(group, serial, None, total)
        add(group, boto_threads, None, total)
        add(group, cold, serial or boto_threads, total)
        add(group, packed, serial or boto_threads, total)
        rows[-2].note += "; GETs each record, then leaves one pack"
        rows[-1].note += "; fresh ledger: reads the pack + lists"

        write_records(server, total, args.new, spread_s=60)
        total += args.new
        group = f"list again, {args.new} new"
        again = measure("boto3 list + get ×10 threads", "boto3_threads", total)
        incremental = measure("jobs(catalog=…) same ledger", "ours_jobs", total, "a")
        add(group, again, None, total)
        add(group, incremental, again, args.new)
        quiet = measure("jobs(catalog=…) nothing new", "ours_jobs", total, "a")
        add("list again, nothing new", quiet, again, total)
    finally:
        if proxy:
            proxy.stop()
        server.stop()
        remove(work)

    link = link_text(args.no_proxy, args.delay_ms, args.rate_mbps)
    title = f"team catalog on S3 (SeaweedFS) over {link}"
    print()
    print(table(rows, title))
    print(
        "\nours/raw = boto3 time ÷ our time (above 1: we are faster); MB/s counts the first N records' bytes"
    )
    save_json(args.json, title, rows, records=args.records, new=args.new, delay_ms=args.delay_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
