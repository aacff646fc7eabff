"""Send only new bytes: the same large file published twice to one bucket, over a WAN link.

Starts SeaweedFS (``weed mini``) on loopback with ``wan_proxy.py`` in front of its S3 port
(its own process: D ms each way, R MB/s per TCP connection), as ``bench_wan.py`` does.
Through the same proxy, each operation in a fresh process (its own wall time, peak RSS),
with the bytes the proxy carried meanwhile:

* ``boto3 upload_file`` of the file at boto3's defaults, twice (it sends it twice);
* ``publish(file, archive=False)``: first, then again (a server-side copy: sent ≈ 0);
* ``publish(file)`` (the default: a tar.gz archive): first, then again with the file's
  mtime changed (a notebook run again rewrites its outputs): the archive is made and
  hashed locally to prove it identical, then copied;
* the same with ``compression="zstd"``;
* the local proof alone (no network): hashing the file (what a plain publish's proof
  reads), making and hashing the archive, gzip and zstd.

Every publish is checked: the recorded sha256 equals the file's; the second publish's
``copied_bytes`` equals the object's size, and its job fetches back verified.

    python benchmarks/bench_dedup.py [--delay-ms 10] [--rate-mbps 50] [--size-mib 256]
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
from common import (
    MiB,
    Row,
    Run,
    link_text,
    machine,
    make_file,
    remove,
    run_isolated,
    save_json,
    sha256_file,
    table,
)
from wan_proxy import WanProxyProcess

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish
import jupyter_publish.archive
import jupyter_publish.backends.s3
import jupyter_publish.publisher

BUCKET = "bench"


# -- operations (each runs in its own child process; endpoint and keys come from the env) ------------


def boto3_upload(path: str, key: str) -> None:
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
    )
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], config=config)
    client.upload_file(path, BUCKET, key, Config=TransferConfig())


def ours_publish(path: str, dest: str, archive: bool, compression: str, touch: bool) -> dict[str, Any]:
    if touch:  # as a notebook run again rewrites its outputs (same bytes, new mtime)
        os.utime(path)
    result = jupyter_publish.publish(
        path, to=dest, archive=archive, compression=compression, endpoint=os.environ["AWS_ENDPOINT_URL_S3"]
    )
    return {
        "job_id": result.job_id,
        "sha256": {f.path: f.sha256 for f in result.files if f.kind == "file"},
        "size": result.archive.size if result.archive else result.total_size,
        "sent": result.sent_bytes,
        "copied": result.copied_bytes,
    }


def ours_fetch(job_id: str, dest: str) -> bool:
    return jupyter_publish.fetch(job_id, dest).verified


def local_proof(path: str, compression: str) -> dict[str, Any]:
    """What a second archive publish does before its copy: make the archive and hash it."""
    from jupyter_publish.archive import ArchiveStream
    from jupyter_publish.backends.s3 import S3Backend, _CopyProver
    from jupyter_publish.bundle import collect
    from jupyter_publish.hashing import ContentHasher

    bundle = collect([path])
    hasher = ContentHasher(0, background=True)
    prover = _CopyProver(None, S3Backend._part_size)
    stream = ArchiveStream(bundle, compression=compression)
    while data := stream.read(1 << 20):
        hasher.update(data)
        prover.update(data)
    stream.close()
    return {"size": hasher.finish().size}


def local_hash(path: str) -> dict[str, Any]:
    """What a second plain publish does before its copy: hash the file (sha256, CID, parts)."""
    from pathlib import Path

    from jupyter_publish.backends.s3 import S3Backend, _CopyProver
    from jupyter_publish.dedup import prove_file

    size = os.path.getsize(path)
    digest = prove_file(Path(path), size, 0, _CopyProver(size, S3Backend._part_size))
    assert digest is not None
    return {"size": digest.size}


# -- the benchmark ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, env: dict[str, str], proxy: Any, source: Path, digest: str, work: Path) -> None:
        self.env, self.proxy, self.source, self.digest, self.work = env, proxy, source, digest, work
        self.size = source.stat().st_size
        self.rows: list[Row] = []
        self.boto3: Run | None = None

    def measure(self, label: str, func: str, *fargs: Any, nbytes: int) -> Run:
        before = self.proxy.stats() if self.proxy else None
        run = run_isolated(label, "bench_dedup", func, *fargs, nbytes=nbytes, env=self.env)
        run.wire = (self.proxy.stats()["bytes"] - before["bytes"]) / 1e6 if before else None  # type: ignore[attr-defined]
        return run

    def add(self, group: str, run: Run, note: str, baseline: Run | None = None) -> None:
        wire = getattr(run, "wire", None)
        parts = [note, f"{wire:,.2f} MB on the wire" if wire is not None else ""]
        self.rows.append(Row(group, run, baseline, "; ".join(p for p in parts if p), {"wire_mb": wire}))

    def boto3_twice(self) -> None:
        for n in (1, 2):
            label, key = f"boto3 upload_file #{n}", f"boto3/{n}/f.bin"
            run = self.measure(label, "boto3_upload", str(self.source), key, nbytes=self.size)
            self.add(f"{self.size / MiB:g} MiB up", run, "sent again" if n == 2 else "")
            self.boto3 = self.boto3 or run

    def publish_twice(self, archive: bool, compression: str = "gzip") -> None:
        what = f"archive ({compression})" if archive else "archive=False"
        dest = f"s3://{BUCKET}/ours/{'a' if archive else 'p'}-{compression}/{{jobID}}/"
        for n in (1, 2):
            run = self.measure(
                f"publish {what} #{n}",
                "ours_publish",
                str(self.source),
                dest,
                archive,
                compression,
                n == 2,
                nbytes=self.size,
            )
            value = run.value
            if value["sha256"] != {self.source.name: self.digest}:
                raise SystemExit(f"publish {what} #{n}: recorded sha256 differs from the file's")
            if n == 2:
                if value["copied"] != value["size"]:
                    raise SystemExit(f"publish {what} #2 copied {value['copied']} of {value['size']} bytes")
                out = self.work / "dl"
                remove(out)
                job = value["job_id"]
                fetched = run_isolated("fetch", "bench_dedup", "ours_fetch", job, str(out), env=self.env)
                if not fetched.value:
                    raise SystemExit(f"publish {what} #2: its job did not fetch back verified")
                remove(out)
            note = f"sent {value['sent'] / 1e6:,.1f} MB, copied {value['copied'] / 1e6:,.1f} MB"
            self.add(f"{self.size / MiB:g} MiB up", run, note, self.boto3)

    def proofs(self) -> None:
        run = run_isolated(
            "hash file (sha256, CID, S3 parts)",
            "bench_dedup",
            "local_hash",
            str(self.source),
            nbytes=self.size,
        )
        self.add("local proof", run, "what archive=False #2 does before its copy; no network")
        for compression in ("gzip", "zstd"):
            run = run_isolated(
                f"make + hash archive ({compression})",
                "bench_dedup",
                "local_proof",
                str(self.source),
                compression,
                nbytes=self.size,
                env=self.env,
            )
            self.add("local proof", run, f"archive {run.value['size'] / 1e6:,.1f} MB, no network")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (default 10)")
    parser.add_argument(
        "--rate-mbps", type=float, default=50.0, help="MB/s per connection (default 50; 0: none)"
    )
    parser.add_argument("--no-proxy", action="store_true", help="straight to SeaweedFS (loopback numbers)")
    parser.add_argument("--size-mib", type=float, default=256, help="file size (default 256)")
    parser.add_argument("--no-zstd", action="store_true", help="skip the zstd archive rows")
    parser.add_argument("--workdir", help="keep the test file here (reused next time)")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)

    from jupyter_publish.testing.seaweed import SeaweedS3

    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jp-bench-dedup-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench_dedup · {machine()}")
    start = time.perf_counter()
    source = make_file(work / f"random-{int(args.size_mib * MiB)}.bin", args.size_mib, pattern="shake")
    digest = sha256_file(source)
    print(f"test file {source} ready in {time.perf_counter() - start:.1f} s")

    server = SeaweedS3(work / "seaweed")
    server.start()
    proxy = None
    try:
        server.create_bucket(BUCKET)
        if not args.no_proxy:
            port = int(server.endpoint.rsplit(":", 1)[1])
            proxy = WanProxyProcess(("127.0.0.1", port), args.delay_ms, args.rate_mbps or None).start()
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
            os.environ.pop(name, None)
        env = {
            **server.credentials_env(),
            "AWS_ENDPOINT_URL_S3": proxy.url if proxy else server.endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "JUPYTER_PUBLISH_HOME": str(work / "home"),
            "JUPYTER_PUBLISH_QUIET": "1",
        }
        bench = Bench(env, proxy, source, digest, work)
        print("… boto3", flush=True)
        bench.boto3_twice()
        print("… publish archive=False", flush=True)
        bench.publish_twice(archive=False)
        print("… publish archive (gzip)", flush=True)
        bench.publish_twice(archive=True)
        if not args.no_zstd:
            print("… publish archive (zstd)", flush=True)
            bench.publish_twice(archive=True, compression="zstd")
        print("… local proof", flush=True)
        bench.proofs()
        rows = bench.rows
    finally:
        if proxy:
            proxy.stop()
        server.stop()
        remove(work / "seaweed", work / "home", work / "dl")
        if own_workdir:
            remove(work)

    link = link_text(args.no_proxy, args.delay_ms, args.rate_mbps)
    title = f"the same file published twice to S3 (SeaweedFS) over {link}"
    print()
    print(table(rows, title))
    print("\nours/raw = boto3's first upload time ÷ ours (above 1: we are faster); MB/s = file size ÷ time")
    save_json(
        args.json,
        title,
        rows,
        delay_ms=None if args.no_proxy else args.delay_ms,
        rate_mb_s=None if args.no_proxy else args.rate_mbps,
        size_bytes=int(args.size_mib * MiB),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
