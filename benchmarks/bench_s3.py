"""S3 throughput and memory: raw boto3 against jupyter-publish, same file, same server, same run.

Starts SeaweedFS (``weed mini``) on loopback, writes one deterministic file, then times,
each in a fresh process so every peak RSS belongs to one operation:

* upload: boto3 ``upload_file`` vs ``publish(file, "s3://…", archive=False)`` (upload +
  sha256 + CID + per-part checksums + manifest) and ``archive=True`` (tar.gz made while it
  uploads, multipart parts as they fill);
* download: boto3 ``download_file`` vs ``fetch(job_id, dest)`` (stream + sha256 + CID
  verify + move into place), and ``fetch`` of the archive job (download, verify, extract,
  verify each member).

Run ``python benchmarks/bench_s3.py [--size-mib 1024] [--repeat 1] [--json out.jsonl]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from common import MiB, Row, best_of, machine, make_file, remove, run_isolated, save_json, sha256_file, table

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish.backends.s3
import jupyter_publish.fetcher
import jupyter_publish.publisher

# The numbers S3Backend uses (backends/s3.py), so raw boto3 gets the same parts and threads.
PART_SIZE = 8 * MiB
THRESHOLD = 64 * MiB
CONCURRENCY = 4


# -- operations (each runs in its own child process) -------------------------------------------------


def _raw_client() -> Any:
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], config=config)


def _raw_transfer() -> TransferConfig:
    return TransferConfig(
        multipart_threshold=THRESHOLD,
        multipart_chunksize=PART_SIZE,
        max_concurrency=CONCURRENCY,
        use_threads=True,
    )


def raw_upload(path: str, bucket: str, key: str) -> None:
    _raw_client().upload_file(path, bucket, key, Config=_raw_transfer())


def raw_download(bucket: str, key: str, out: str) -> None:
    _raw_client().download_file(bucket, key, out, Config=_raw_transfer())


def ours_publish(path: str, dest: str, archive: bool) -> dict[str, Any]:
    result = jupyter_publish.publisher.publish(path, dest, archive=archive, quiet=True)
    files = [f for f in result.files if f.kind == "file"]
    return {"job_id": result.job_id, "sha256": files[0].sha256, "cid": files[0].cid, "uri": result.uri}


def ours_fetch(job_id: str, dest: str) -> dict[str, Any]:
    result = jupyter_publish.fetcher.fetch(job_id, dest, quiet=True)
    return {
        "files": [
            {"path": str(f.path), "sha256": f.sha256, "verified": f.verified_against} for f in result.files
        ]
    }


# -- the benchmark ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per operation; the fastest is shown")
    parser.add_argument(
        "--workdir", help="where the file, server data and downloads go (default: a temp dir)"
    )
    parser.add_argument("--pattern", choices=("sha256", "shake"), default="sha256", help="test data")
    parser.add_argument("--no-archive", action="store_true", help="skip the archive=True publish/fetch")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)

    from jupyter_publish.testing.seaweed import SeaweedS3

    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jp-bench-s3-"))
    work.mkdir(parents=True, exist_ok=True)
    size = int(args.size_mib * MiB)
    print(f"# bench_s3 · {machine()}")
    start = time.perf_counter()
    source = make_file(work / f"data-{args.pattern}-{size}.bin", args.size_mib, pattern=args.pattern)
    print(f"test file: {source} ({size / MiB:g} MiB, made in {time.perf_counter() - start:.1f} s)")
    expected = sha256_file(source)

    server = SeaweedS3(work / "seaweed")
    server.start()
    rows: list[Row] = []
    try:
        bucket = server.create_bucket("bench")
        env = {
            **server.credentials_env(),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "JUPYTER_PUBLISH_HOME": str(work / "home"),
            "JUPYTER_PUBLISH_QUIET": "1",
        }
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
            os.environ.pop(name, None)
        _warm_up(server, bucket, work)
        rows += _uploads(args, str(source), bucket, size, expected, env)
        rows += _downloads(args, work, bucket, size, expected, env, rows)
    finally:
        server.stop()
        remove(work / "seaweed", work / "home", work / "dl")
        if own_workdir:
            remove(work)

    title = f"S3 (SeaweedFS 4.48 on loopback), {size / MiB:g} MiB, best of {args.repeat}"
    print()
    print(table(rows, title))
    save_json(args.json, title, rows, size_bytes=size, repeat=args.repeat)
    return 0


def _warm_up(server: Any, bucket: str, work: Path) -> None:
    """One untimed multipart round trip: SeaweedFS allocates its volumes on the first writes."""
    blob = make_file(work / "warmup.bin", 96, pattern="shake")
    client = server.client()
    client.upload_file(str(blob), bucket, "warmup.bin", Config=_raw_transfer())
    client.download_file(bucket, "warmup.bin", str(blob), Config=_raw_transfer())
    client.delete_object(Bucket=bucket, Key="warmup.bin")
    remove(blob, blob.with_name(blob.name + ".pattern"))


def _uploads(
    args: argparse.Namespace, source: str, bucket: str, size: int, expected: str, env: dict[str, str]
) -> list[Row]:
    counter = iter(range(1_000_000))

    def raw() -> Any:
        key = f"raw/{next(counter)}/data.bin"
        run = run_isolated(
            "boto3 upload_file", "bench_s3", "raw_upload", source, bucket, key, nbytes=size, env=env
        )
        run.value = key
        return run

    def ours(archive: bool) -> Any:
        label = "publish archive=True" if archive else "publish archive=False"
        dest = f"s3://{bucket}/{'archive' if archive else 'plain'}/{{jobID}}/"
        run = run_isolated(label, "bench_s3", "ours_publish", source, dest, archive, nbytes=size, env=env)
        if run.value["sha256"] != expected:
            raise SystemExit(f"{label} recorded sha256 {run.value['sha256']}, the file has {expected}")
        return run

    measures = [raw, lambda: ours(False)] + ([] if args.no_archive else [lambda: ours(True)])
    runs = best_of(args.repeat, *measures)
    rows = [
        Row("upload", runs[0], note=f"key {runs[0].value}"),
        Row("upload", runs[1], runs[0], "sha256+CID, part checksums"),
    ]
    if len(runs) > 2:
        rows.append(Row("upload", runs[2], runs[0], "tar.gz streamed into multipart parts"))
    return rows


def _downloads(
    args: argparse.Namespace,
    work: Path,
    bucket: str,
    size: int,
    expected: str,
    env: dict[str, str],
    uploads: list[Row],
) -> list[Row]:
    out = work / "dl"
    raw_key = uploads[0].run.value

    def raw() -> Any:
        target = out / "raw.bin"
        out.mkdir(parents=True, exist_ok=True)
        run = run_isolated(
            "boto3 download_file",
            "bench_s3",
            "raw_download",
            bucket,
            raw_key,
            str(target),
            nbytes=size,
            env=env,
        )
        got = sha256_file(target)
        remove(target)
        if got != expected:
            raise SystemExit(f"boto3 download_file gave sha256 {got}, expected {expected}")
        return run

    def ours(row: Row, label: str) -> Any:
        target = out / "fetched"
        run = run_isolated(
            label, "bench_s3", "ours_fetch", row.run.value["job_id"], str(target), nbytes=size, env=env
        )
        files = run.value["files"]
        data = [f for f in files if f["sha256"] == expected]
        if len(data) != 1 or not data[0]["verified"] or sha256_file(data[0]["path"]) != expected:
            raise SystemExit(f"{label}: fetched files {files} do not hold the verified source file")
        remove(target)
        return run

    measures = [raw, lambda: ours(uploads[1], "fetch job (plain)")]
    if len(uploads) > 2:
        measures.append(lambda: ours(uploads[2], "fetch job (archive)"))
    runs = best_of(args.repeat, *measures)
    rows = [Row("download", runs[0]), Row("download", runs[1], runs[0], "sha256+CID verify")]
    if len(runs) > 2:
        rows.append(Row("download", runs[2], runs[0], "download, verify, extract, verify member"))
    return rows


if __name__ == "__main__":
    sys.exit(main())
