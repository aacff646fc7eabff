"""IPFS, HTTP and local-CID throughput: curl against jupyter-publish, same file, same run.

Starts the js-ipfs node (Kubo RPC dialect) and nginx (WebDAV) on loopback, writes one
deterministic file (default 100 MiB), then times, each in a fresh process:

* IPFS add: ``curl -F file=@f 'API/api/v0/add?cid-version=0&pin=false'`` vs
  ``publish(f, "ipfs://", archive=False, api=API, pin=False)`` (which also computes
  sha256 + CID locally and checks the daemon's root CID against it);
* IPFS cat: ``curl -X POST 'API/api/v0/cat?arg=CID' -o out`` vs ``fetch("ipfs://CID", dest)``
  (64 MiB ``cat`` windows, CID recomputed and compared);
* HTTP: ``curl -T f URL`` vs ``publish(f, "http://…/", archive=False)``; ``curl -o`` vs
  ``fetch(job_id, dest)`` (sha256 verified);
* local: ``cid_of(f)`` (CIDv0 and CIDv1) beside ``sha256sum f``.

Run ``python benchmarks/bench_ipfs_http.py [--size-mib 100] [--repeat 1] [--json out.jsonl]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpcore  # noqa: F401 - httpx imports it (and trio, if installed) lazily: not timed here
import httpx  # noqa: F401
from common import (
    MiB,
    Row,
    best_of,
    machine,
    make_file,
    remove,
    run_command,
    run_isolated,
    save_json,
    sha256_file,
    table,
)

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish.backends.http
import jupyter_publish.backends.ipfs
import jupyter_publish.cid
import jupyter_publish.fetcher
import jupyter_publish.publisher
from jupyter_publish.testing.vectors import FACTS_CIDS

# FACTS.md: CIDs of the sha256(i) stream; checked whenever the size matches.
KNOWN_CIDS = FACTS_CIDS
CURL = ["curl", "-sS", "--fail", "--noproxy", "*"]


# -- operations (each runs in its own child process) -------------------------------------------------


def ours_publish(path: str, to: str, options: dict[str, Any]) -> dict[str, Any]:
    result = jupyter_publish.publisher.publish(path, to, archive=False, quiet=True, **options)
    [record] = [f for f in result.files if f.kind == "file"]
    return {"job_id": result.job_id, "uri": result.uri, "sha256": record.sha256, "cid": record.cid}


def ours_fetch(ref: str, dest: str, options: dict[str, Any]) -> dict[str, Any]:
    result = jupyter_publish.fetcher.fetch(ref, dest, quiet=True, **options)
    return {"files": [[str(f.path), f.sha256, f.verified_against] for f in result.files]}


def local_cid(path: str, version: int) -> str:
    return jupyter_publish.cid.cid_of(path, version)


# -- the benchmark ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=100, help="file size in MiB (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per operation; the fastest is shown")
    parser.add_argument("--workdir", help="where the file, servers and downloads go (default: a temp dir)")
    parser.add_argument("--pattern", choices=("sha256", "shake"), default="sha256", help="test data")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)

    from jupyter_publish.testing.ipfs import IpfsNode
    from jupyter_publish.testing.nginx import Nginx

    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jp-bench-ipfs-http-"))
    work.mkdir(parents=True, exist_ok=True)
    size = int(args.size_mib * MiB)
    print(f"# bench_ipfs_http · {machine()}")
    start = time.perf_counter()
    source = make_file(work / f"data-{args.pattern}-{size}.bin", args.size_mib, pattern=args.pattern)
    print(f"test file: {source} ({size / MiB:g} MiB, made in {time.perf_counter() - start:.1f} s)")
    expected = sha256_file(source)
    env = {"JUPYTER_PUBLISH_HOME": str(work / "home"), "JUPYTER_PUBLISH_QUIET": "1"}
    ctx = _Context(args.repeat, str(source), size, expected, env, work / "dl")

    rows: list[Row] = []
    node = IpfsNode(work / "ipfs")
    nginx = Nginx("dav", workdir=work / "nginx")
    try:
        node.start()
        nginx.start()
        _warm_up(node.api_url, work)
        rows += _ipfs(ctx, node.api_url, args.pattern)
        rows += _http(ctx, nginx.base_url)
        rows += _local(ctx, args.pattern)
    finally:
        nginx.stop()
        node.stop()
        remove(work / "ipfs", work / "nginx", work / "home", work / "dl")
        if own_workdir:
            remove(work)

    title = (
        f"IPFS (js-ipfs 0.18.1), HTTP (nginx WebDAV), local CIDs, {size / MiB:g} MiB, best of {args.repeat}"
    )
    print()
    print(table(rows, title))
    save_json(args.json, title, rows, size_bytes=size, repeat=args.repeat)
    return 0


class _Context:
    def __init__(
        self, repeat: int, source: str, size: int, sha256: str, env: dict[str, str], out: Path
    ) -> None:
        self.repeat, self.source, self.size, self.sha256, self.env, self.out = (
            repeat,
            source,
            size,
            sha256,
            env,
            out,
        )

    def best(self, *measures: Any) -> list[Any]:
        return best_of(self.repeat, *measures)

    def python(self, label: str, func: str, *args: Any) -> Any:
        return run_isolated(label, "bench_ipfs_http", func, *args, nbytes=self.size, env=self.env)

    def command(self, label: str, argv: list[str]) -> Any:
        return run_command(label, argv, nbytes=self.size, env=self.env)

    def check_download(self, label: str, path: Path) -> None:
        got = sha256_file(path)
        if got != self.sha256:
            raise SystemExit(f"{label}: downloaded sha256 {got}, expected {self.sha256}")

    def target(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / "out.bin"


def _warm_up(api: str, work: Path) -> None:
    """One untimed add and cat of 16 MiB: the node's first requests are slower (JIT, repo)."""
    blob = make_file(work / "warmup.bin", 16, pattern="shake")
    argv = [*CURL, "-F", f"file=@{blob}", f"{api}/api/v0/add?cid-version=0&pin=false"]
    added = subprocess.run(argv, capture_output=True, text=True, check=True)
    cid = json.loads(added.stdout.strip().splitlines()[-1])["Hash"]
    cat = [*CURL, "-X", "POST", f"{api}/api/v0/cat?arg={cid}", "-o", os.devnull]
    subprocess.run(cat, capture_output=True, check=True)
    remove(blob, blob.with_name(blob.name + ".pattern"))


def _known(size: int, pattern: str, version: int) -> str | None:
    return KNOWN_CIDS[size][version] if pattern == "sha256" and size in KNOWN_CIDS else None


def _ipfs(ctx: _Context, api: str, pattern: str) -> list[Row]:
    add_url = f"{api}/api/v0/add?cid-version=0&pin=false"
    known = _known(ctx.size, pattern, 0)
    added: dict[str, str] = {}

    def raw_add() -> Any:
        run = ctx.command("curl add", [*CURL, "-F", f"file=@{ctx.source}", add_url])
        cid = json.loads(run.value.strip().splitlines()[-1])["Hash"]
        if (known and cid != known) or added.setdefault("cid", cid) != cid:
            raise SystemExit(f"js-ipfs added the file as {cid}, expected {known or added['cid']}")
        return run

    def ours_add() -> Any:
        run = ctx.python("publish ipfs://", "ours_publish", ctx.source, "ipfs://", {"api": api, "pin": False})
        if run.value["cid"] != added["cid"] or run.value["sha256"] != ctx.sha256:
            raise SystemExit(f"publish recorded {run.value}, curl add gave {added['cid']}")
        return run

    def raw_cat() -> Any:
        out = ctx.target()
        url = f"{api}/api/v0/cat?arg={added['cid']}"
        run = ctx.command("curl cat", [*CURL, "-X", "POST", url, "-o", str(out)])
        ctx.check_download("curl cat", out)
        remove(out)
        return run

    def ours_cat() -> Any:
        dest = ctx.out / "fetched"
        ref = f"ipfs://{added['cid']}"
        run = ctx.python("fetch ipfs://CID", "ours_fetch", ref, str(dest), {"api": api})
        [(path, _sha, verified)] = run.value["files"]
        if verified != "cid":
            raise SystemExit(f"fetch {ref} verified against {verified!r}, expected the CID")
        ctx.check_download("fetch ipfs://", Path(path))
        remove(dest)
        return run

    add, ours = ctx.best(raw_add, ours_add)
    cat, fetched = ctx.best(raw_cat, ours_cat)
    return [
        Row("ipfs add", add, note=f"{added['cid'][:12]}…, pin=false"),
        Row("ipfs add", ours, add, "+ sha256 + CID, root CID checked, pin=false"),
        Row("ipfs cat", cat),
        Row("ipfs cat", fetched, cat, "64 MiB cat windows, CID verify"),
    ]


def _http(ctx: _Context, base: str) -> list[Row]:
    url = f"{base}/raw/data.bin"
    jobs: list[str] = []

    def raw_put() -> Any:
        return ctx.command("curl -T (PUT)", [*CURL, "-T", ctx.source, url])

    def ours_put() -> Any:
        run = ctx.python("publish http PUT", "ours_publish", ctx.source, f"{base}/ours/{{jobID}}/", {})
        if run.value["sha256"] != ctx.sha256:
            raise SystemExit(f"publish to nginx recorded {run.value['sha256']}, expected {ctx.sha256}")
        jobs.append(run.value["job_id"])
        return run

    def raw_get() -> Any:
        out = ctx.target()
        run = ctx.command("curl -o (GET)", [*CURL, "-o", str(out), url])
        ctx.check_download("curl -o", out)
        remove(out)
        return run

    def ours_get() -> Any:
        dest = ctx.out / "fetched"
        run = ctx.python("fetch job (http)", "ours_fetch", jobs[0], str(dest), {})
        [(path, _sha, verified)] = run.value["files"]
        if not verified or "sha256" not in verified:
            raise SystemExit(f"fetch of the HTTP job verified against {verified!r}, expected sha256")
        ctx.check_download("fetch http", Path(path))
        remove(dest)
        return run

    put, ours = ctx.best(raw_put, ours_put)
    get, fetched = ctx.best(raw_get, ours_get)
    return [
        Row("http put", put),
        Row("http put", ours, put, "+ sha256 + CID"),
        Row("http get", get),
        Row("http get", fetched, get, "+ sha256 + CID verify"),
    ]


def _local(ctx: _Context, pattern: str) -> list[Row]:
    def sums() -> Any:
        run = ctx.command("sha256sum", ["sha256sum", ctx.source])
        if run.value.split()[0] != ctx.sha256:
            raise SystemExit("sha256sum disagrees with hashlib")
        return run

    def cid(version: int) -> Any:
        run = ctx.python(f"cid_of v{version}", "local_cid", ctx.source, version)
        known = _known(ctx.size, pattern, version)
        if known and run.value != known:
            raise SystemExit(f"cid_of v{version} gave {run.value}, FACTS.md says {known}")
        return run

    base, v0, v1 = ctx.best(sums, lambda: cid(0), lambda: cid(1))
    note = "matches FACTS.md" if _known(ctx.size, pattern, 0) else ""
    return [Row("local hash", base), Row("local hash", v0, base, note), Row("local hash", v1, base, note)]


if __name__ == "__main__":
    sys.exit(main())
