"""S3 over an emulated WAN link: boto3 at its defaults against jupyter-publish, same run.

Starts SeaweedFS (``weed mini``) on loopback and puts ``wan_proxy.py`` in front of its S3
port (its own process: D ms each way, R MB/s per TCP connection). Through the same proxy,
each operation in a fresh process (its own wall time and peak RSS):

* ``small-up`` / ``small-down``: N files of K KiB. ``publish(folder, "s3://…/", archive=False)``
  against boto3 ``upload_file`` 10 at a time (a ThreadPoolExecutor(10) sharing one client,
  as ``aws s3 cp --recursive`` does 10 at a time); ``fetch(job_id, dest)`` against 10-at-a-time
  ``download_file``;
* ``large-up`` / ``large-down``: one incompressible file. ``publish(…, archive=False)``
  against ``upload_file``; ``fetch(job_id)`` against ``download_file`` (boto3's defaults:
  8 MiB parts, 10 threads);
* ``csv``: a numeric CSV, default ``publish`` (archive=True, tar.gz) against ``upload_file``
  of the raw CSV; ``random-archive``: the incompressible file, same comparison.

boto3's side is ``boto3.client("s3", config=Config(request_checksum_calculation=
"when_required", response_checksum_validation="when_required", s3={"addressing_style":
"path"}))`` and ``TransferConfig()``: nothing tuned. Every run is checked: recorded sha256s
equal the source's, downloads are byte-identical.

    python benchmarks/bench_wan.py [--delay-ms 10] [--rate-mbps 50] [--size-mib 256] [--files 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from common import (
    MiB,
    Row,
    Run,
    best_of,
    link_text,
    machine,
    make_csv,
    make_file,
    make_tree,
    remove,
    run_isolated,
    save_json,
    sha256_file,
    table,
    tree_digests,
)
from wan_proxy import WanProxyProcess

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish
import jupyter_publish.api
import jupyter_publish.backends.s3
import jupyter_publish.fetcher
import jupyter_publish.publisher

CASES = ("small-up", "small-down", "large-up", "large-down", "csv", "random-archive")
WORKERS = 10  # files at once on boto3's side, as `aws s3 cp --recursive` (max_concurrent_requests)
BUCKET = "bench"


# -- operations (each runs in its own child process; endpoint and keys come from the env) ------------


def _client(pool: int = 10) -> Any:
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
        max_pool_connections=pool,
    )
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], config=config)


def boto3_upload(path: str, key: str) -> None:
    _client().upload_file(path, BUCKET, key, Config=TransferConfig())


def boto3_download(key: str, out: str) -> None:
    _client().download_file(BUCKET, key, out, Config=TransferConfig())


def boto3_upload_many(folder: str, prefix: str, names: list[str]) -> None:
    client = _client(pool=WORKERS)
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda n: client.upload_file(f"{folder}/{n}", BUCKET, prefix + n), names))


def boto3_download_many(prefix: str, names: list[str], out: str) -> None:
    client = _client(pool=WORKERS)
    for parent in {os.path.dirname(n) for n in names}:
        os.makedirs(os.path.join(out, parent), exist_ok=True)
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda n: client.download_file(BUCKET, prefix + n, f"{out}/{n}"), names))


def ours_publish(path: str, dest: str, archive: bool, jobs: int | None) -> dict[str, Any]:
    extra = {"max_concurrency": jobs} if jobs else {}
    result = jupyter_publish.publish(
        path, to=dest, archive=archive, endpoint=os.environ["AWS_ENDPOINT_URL_S3"], **extra
    )
    return {
        "job_id": result.job_id,
        "files": {f.path: f.sha256 for f in result.files if f.kind == "file"},
        "archive_size": result.archive.size if result.archive else None,
    }


def ours_fetch(job_id: str, dest: str, jobs: int | None) -> dict[str, Any]:
    extra = {"max_concurrency": jobs} if jobs else {}
    result = jupyter_publish.fetch(job_id, dest, **extra)
    return {"files": [[str(f.path), f.sha256, f.verified_against] for f in result.files]}


# -- the benchmark ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, env: dict[str, str], proxy: Any) -> None:
        self.args, self.work, self.env, self.proxy = args, work, env, proxy
        self.jobs = args.jobs
        self.counter = iter(range(1_000_000))
        self.rows: list[Row] = []
        self.state: dict[str, Any] = {}

    # -- measuring ---------------------------------------------------------------------------------
    def measure(self, label: str, func: str, *fargs: Any, nbytes: int) -> Run:
        """One isolated run, with what the proxy saw meanwhile (connections, bytes, its CPU)."""
        before = self.proxy.stats() if self.proxy else None
        run = run_isolated(label, "bench_wan", func, *fargs, nbytes=nbytes, env=self.env)
        if before is not None:
            after = self.proxy.stats()
            run.link = {  # type: ignore[attr-defined]
                "connections": after["connections"] - before["connections"],
                "wire_mb": (after["bytes"] - before["bytes"]) / 1e6,
                "proxy_cpu_s": round(after["cpu_s"] - before["cpu_s"], 2),
            }
        return run

    def pair(
        self,
        group: str,
        boto: Callable[[], Run],
        ours: Callable[[], Run],
        notes: tuple[str, str],
        files: int = 0,
    ) -> tuple[Run, Run]:
        """Measure boto3's way and ours, interleaved; add both rows (ours with its ratio)."""
        raw, mine = best_of(self.args.repeat, boto, ours)
        for run, note, base in ((raw, notes[0], None), (mine, notes[1], raw)):
            link = getattr(run, "link", None)
            parts = [note, f"{files / run.wall:,.0f} files/s" if files else ""]
            if link:
                parts.append(
                    f"{link['connections']} conns, {link['wire_mb']:,.1f} MB on the wire, "
                    f"proxy CPU {link['proxy_cpu_s']:.1f} s"
                )
            self.rows.append(Row(group, run, base, "; ".join(p for p in parts if p), dict(link or {})))
        return raw, mine

    def key(self, kind: str) -> str:
        return f"boto3/{kind}/{next(self.counter)}/"

    def our_dest(self, kind: str) -> str:
        return f"s3://{BUCKET}/ours/{kind}/{{jobID}}/"

    # -- checks --------------------------------------------------------------------------------------
    @staticmethod
    def check_recorded(label: str, recorded: dict[str, str], expected: dict[str, str]) -> None:
        if recorded != expected:
            wrong = sorted(n for n in {*recorded, *expected} if recorded.get(n) != expected.get(n))
            name = wrong[0]
            raise SystemExit(
                f"{label}: {len(wrong)} recorded sha256(s) differ from the source's, e.g. {name}: "
                f"recorded {recorded.get(name)}, source {expected.get(name)}"
            )

    @staticmethod
    def check_fetched(label: str, dest: Path, files: list[list[Any]], expected: dict[str, str]) -> None:
        got = {str(Path(p).relative_to(dest)): (s, v) for p, s, v in files}
        for name, digest in expected.items():
            if name not in got or got[name][0] != digest or not got[name][1]:
                raise SystemExit(f"{label}: {name} missing, unverified or wrong: {got.get(name)}")
        on_disk = {n: d for n, d in tree_digests(dest).items() if n in expected}
        if on_disk != expected:
            raise SystemExit(f"{label}: the files on disk differ from the source")

    # -- cases ---------------------------------------------------------------------------------------
    def small_up(self, timed: bool = True) -> None:
        folder, digests = self.state["small"]
        names = sorted(digests)
        nbytes = len(names) * self.args.file_kib * 1024

        def boto() -> Run:
            prefix = self.key("small")
            run = self.measure(
                "boto3 upload_file ×10", "boto3_upload_many", str(folder), prefix, names, nbytes=nbytes
            )
            self.state["small_prefix"] = prefix
            return run

        def ours() -> Run:
            run = self.measure(
                "publish archive=False",
                "ours_publish",
                str(folder),
                self.our_dest("small"),
                False,
                self.jobs,
                nbytes=nbytes,
            )
            self.check_recorded("publish (small files)", run.value["files"], digests)
            self.state["small_job"] = run.value["job_id"]
            return run

        if timed:
            group = f"{len(names)} × {self.args.file_kib} KiB up"
            self.pair(group, boto, ours, ("", "sha256+CID, manifest"), files=len(names))
        else:
            boto()
            ours()

    def small_down(self) -> None:
        if "small_job" not in self.state:
            self.small_up(timed=False)
        digests = self.state["small"][1]
        names = sorted(digests)
        nbytes = len(names) * self.args.file_kib * 1024
        out = self.work / "dl"

        def boto() -> Run:
            remove(out)
            run = self.measure(
                "boto3 download_file ×10",
                "boto3_download_many",
                self.state["small_prefix"],
                names,
                str(out),
                nbytes=nbytes,
            )
            if tree_digests(out) != digests:
                raise SystemExit("boto3 download_file ×10: the files differ from the source")
            remove(out)
            return run

        def ours() -> Run:
            remove(out)
            run = self.measure(
                "fetch job", "ours_fetch", self.state["small_job"], str(out), self.jobs, nbytes=nbytes
            )
            self.check_fetched("fetch (small files)", out, run.value["files"], digests)
            remove(out)
            return run

        group = f"{len(names)} × {self.args.file_kib} KiB down"
        self.pair(group, boto, ours, ("", "verified"), files=len(names))

    def large_up(self, timed: bool = True) -> None:
        source, digest = self.state["large"]
        size = source.stat().st_size

        def boto() -> Run:
            key = self.key("large") + source.name
            run = self.measure("boto3 upload_file", "boto3_upload", str(source), key, nbytes=size)
            self.state["large_key"] = key
            return run

        def ours() -> Run:
            run = self.measure(
                "publish archive=False",
                "ours_publish",
                str(source),
                self.our_dest("large"),
                False,
                self.jobs,
                nbytes=size,
            )
            self.check_recorded("publish (large)", run.value["files"], {source.name: digest})
            self.state["large_job"] = run.value["job_id"]
            return run

        if timed:
            self.pair(f"{size / MiB:g} MiB up", boto, ours, ("8 MiB parts, 10 threads", "sha256+CID"))
        else:
            boto()
            ours()

    def large_down(self) -> None:
        if "large_job" not in self.state:
            self.large_up(timed=False)
        source, digest = self.state["large"]
        size = source.stat().st_size
        out = self.work / "dl"

        def boto() -> Run:
            remove(out)
            out.mkdir(parents=True)
            target = out / source.name
            run = self.measure(
                "boto3 download_file", "boto3_download", self.state["large_key"], str(target), nbytes=size
            )
            if sha256_file(target) != digest:
                raise SystemExit("boto3 download_file: the file differs from the source")
            remove(out)
            return run

        def ours() -> Run:
            remove(out)
            run = self.measure(
                "fetch job", "ours_fetch", self.state["large_job"], str(out), self.jobs, nbytes=size
            )
            self.check_fetched("fetch (large)", out, run.value["files"], {source.name: digest})
            remove(out)
            return run

        self.pair(f"{size / MiB:g} MiB down", boto, ours, ("8 MiB ranges, 10 threads", "verified"))

    def archive_up(self, what: str, source: Path, digest: str) -> None:
        size = source.stat().st_size

        def boto() -> Run:
            key = self.key(what) + source.name
            return self.measure("boto3 upload_file", "boto3_upload", str(source), key, nbytes=size)

        def ours() -> Run:
            run = self.measure(
                "publish (archive)",
                "ours_publish",
                str(source),
                self.our_dest(what),
                True,
                self.jobs,
                nbytes=size,
            )
            self.check_recorded(f"publish ({what})", run.value["files"], {source.name: digest})
            run.archive_size = run.value["archive_size"]  # type: ignore[attr-defined]
            return run

        _, mine = self.pair(f"{size / MiB:g} MiB {what} up", boto, ours, ("raw file", ""))
        packed = mine.archive_size  # type: ignore[attr-defined]
        self.rows[-1].note = "; ".join(
            x for x in (f"tar.gz {packed / 1e6:,.0f} MB ({packed / size:.0%})", self.rows[-1].note) if x
        )
        self.rows[-1].extra["archive_bytes"] = packed


def link_check(url: str, env: dict[str, str], delay_ms: float, rate: float | None) -> str:
    """Measure what the proxy gives one connection: a HEAD's round trip and one GET's MB/s."""
    client = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )
    blob = os.urandom(16 * MiB)
    client.put_object(Bucket=BUCKET, Key="probe/blob", Body=blob)
    rtts = []
    for _ in range(8):
        start = time.perf_counter()
        client.head_object(Bucket=BUCKET, Key="probe/blob")
        rtts.append(time.perf_counter() - start)
    start = time.perf_counter()
    body = client.get_object(Bucket=BUCKET, Key="probe/blob")["Body"]
    got = sum(len(c) for c in iter(lambda: body.read(MiB), b""))
    wall = time.perf_counter() - start
    client.delete_object(Bucket=BUCKET, Key="probe/blob")
    client.close()
    assert got == len(blob)
    rtt = sorted(rtts[1:])[len(rtts) // 2 - 1]
    return (
        f"link check: HEAD round trip {rtt * 1e3:.1f} ms (2×D = {2 * delay_ms:g} ms + server), "
        f"one GET of 16 MiB {got / 1e6 / wall:.1f} MB/s (R = {rate or 'no cap'}; includes 2×D)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (default 10)")
    parser.add_argument(
        "--rate-mbps", type=float, default=50.0, help="MB/s per connection (default 50; 0: none)"
    )
    parser.add_argument("--no-proxy", action="store_true", help="straight to SeaweedFS (loopback numbers)")
    parser.add_argument("--size-mib", type=float, default=256, help="large file and CSV size (default 256)")
    parser.add_argument("--files", type=int, default=500, help="number of small files (default 500)")
    parser.add_argument("--file-kib", type=int, default=8, help="small file size in KiB (default 8)")
    parser.add_argument("--jobs", type=int, default=None, help="pass max_concurrency=N to publish/fetch")
    parser.add_argument("--repeat", type=int, default=1, help="runs per operation; the fastest is shown")
    parser.add_argument("--only", help="comma-separated cases: " + ",".join(CASES))
    parser.add_argument("--workdir", help="keep the test files here (reused next time)")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)
    cases = CASES if not args.only else tuple(c.strip() for c in args.only.split(",") if c.strip())
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")

    from jupyter_publish.testing.seaweed import SeaweedS3

    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jp-bench-wan-"))
    work.mkdir(parents=True, exist_ok=True)
    size = int(args.size_mib * MiB)
    print(f"# bench_wan · {machine()}")
    state: dict[str, Any] = {}
    start = time.perf_counter()
    if {"small-up", "small-down"} & set(cases):
        folder = work / f"small-{args.files}x{args.file_kib}k"
        state["small"] = (folder, make_tree(folder, args.files, args.file_kib * 1024, seed="wan"))
    if {"large-up", "large-down", "random-archive"} & set(cases):
        source = make_file(work / f"random-{size}.bin", args.size_mib, pattern="shake")
        state["large"] = (source, sha256_file(source))
    if "csv" in cases:
        csv = make_csv(work / f"numbers-{size}.csv", args.size_mib)
        state["csv"] = (csv, sha256_file(csv))
    print(f"test data in {work} ready in {time.perf_counter() - start:.1f} s")

    server = SeaweedS3(work / "seaweed")
    server.start()
    proxy = None
    try:
        server.create_bucket(BUCKET)
        _warm_up(server, work)
        if not args.no_proxy:
            port = int(server.endpoint.rsplit(":", 1)[1])
            proxy = WanProxyProcess(("127.0.0.1", port), args.delay_ms, args.rate_mbps or None).start()
        url = proxy.url if proxy else server.endpoint
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
            os.environ.pop(name, None)
        env = {
            **server.credentials_env(),
            "AWS_ENDPOINT_URL_S3": url,  # everything, ours and boto3's, goes through the proxy
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "JUPYTER_PUBLISH_HOME": str(work / "home"),
            "JUPYTER_PUBLISH_QUIET": "1",
        }
        if proxy:
            print(link_check(url, env, args.delay_ms, args.rate_mbps or None))
        bench = Bench(args, work, env, proxy)
        bench.state.update(state)
        for case in CASES:
            if case not in cases:
                continue
            print(f"… {case}", flush=True)
            if case == "small-up":
                bench.small_up()
            elif case == "small-down":
                bench.small_down()
            elif case == "large-up":
                bench.large_up()
            elif case == "large-down":
                bench.large_down()
            elif case == "csv":
                bench.archive_up("csv", *state["csv"])
            elif case == "random-archive":
                bench.archive_up("random", *state["large"])
        rows = bench.rows
    finally:
        if proxy:
            proxy.stop()
        server.stop()
        remove(work / "seaweed", work / "home", work / "dl")
        if own_workdir:
            remove(work)

    link = link_text(args.no_proxy, args.delay_ms, args.rate_mbps)
    jobs = f", max_concurrency={args.jobs}" if args.jobs else ""
    title = f"S3 (SeaweedFS) over {link}{jobs}, best of {args.repeat}"
    print()
    print(table(rows, title))
    print("\nours/raw = boto3 time ÷ our time (above 1: we are faster); conns = TCP connections opened")
    save_json(
        args.json,
        title,
        rows,
        delay_ms=None if args.no_proxy else args.delay_ms,
        rate_mb_s=None if args.no_proxy else args.rate_mbps,
        size_bytes=size,
        files=args.files,
        file_kib=args.file_kib,
        jobs=args.jobs,
        repeat=args.repeat,
    )
    return 0


def _warm_up(server: Any, work: Path) -> None:
    """One untimed multipart round trip, straight to SeaweedFS: it allocates volumes on first writes."""
    blob = make_file(work / "warmup.bin", 96, pattern="shake")
    client = server.client()
    client.upload_file(str(blob), BUCKET, "warmup.bin")
    client.download_file(BUCKET, "warmup.bin", str(blob))
    client.delete_object(Bucket=BUCKET, Key="warmup.bin")
    remove(blob, blob.with_name(blob.name + ".pattern"))


if __name__ == "__main__":
    sys.exit(main())
