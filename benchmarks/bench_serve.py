"""A file served by ``jupyter-publish serve``, fetched over a WAN link: curl against fetch.

Publishes one incompressible file to the local store, starts ``jupyter-publish serve`` and
puts ``wan_proxy.py`` in front of it (its own process: D ms each way, R MB/s per TCP
connection). Through the proxy, each in a fresh process (its own wall time, peak RSS):

* ``curl -o`` of the served link (one connection, what a colleague would type);
* ``fetch(link, dest)`` from another home (no ledger that knows the file: every byte
  crosses the link), which reads a server that answers ``Accept-Ranges: bytes`` in
  parallel 8 MiB ranges.

Both downloads are checked byte for byte against the source.

    python benchmarks/bench_serve.py [--delay-ms 10] [--rate-mbps 50] [--size-mib 64] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import (
    MiB,
    Row,
    Run,
    best_of,
    link_text,
    machine,
    make_file,
    run_command,
    run_isolated,
    save_json,
    sha256_file,
    table,
)
from wan_proxy import WanProxyProcess

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish
import jupyter_publish.fetcher


def ours_publish(path: str) -> str:
    return jupyter_publish.publish(path, "local", archive=False).job_id


def ours_fetch(link: str, dest: str) -> str:
    fetched = jupyter_publish.fetch(link, dest)
    return str(fetched.files[0].path)


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], int, str]:
    """``jupyter-publish serve`` for the home in ``env``: the process, its port and token."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_publish.cli", "serve"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    printed = re.search(r"http://127\.0\.0\.1:(\d+)/([^/\s]+)/JOB_ID", proc.stdout.readline())
    if printed is None:
        proc.terminate()
        raise RuntimeError("jupyter-publish serve printed no URL")
    return proc, int(printed.group(1)), printed.group(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (default 10)")
    parser.add_argument(
        "--rate-mbps", type=float, default=50.0, help="MB/s per connection (default 50; 0: none)"
    )
    parser.add_argument("--no-proxy", action="store_true", help="straight to serve (loopback numbers)")
    parser.add_argument("--size-mib", type=float, default=64, help="file size (default 64)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the fastest is shown")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="jp-bench-serve-"))
    print(f"# bench_serve · {machine()}")
    source = make_file(work / "src" / "big.bin", args.size_mib, pattern="shake")
    digest = sha256_file(source)
    nbytes = int(args.size_mib * MiB)
    env = {**os.environ, "JUPYTER_PUBLISH_HOME": str(work / "home"), "JUPYTER_PUBLISH_QUIET": "1"}
    job_id = run_isolated("publish", "bench_serve", "ours_publish", str(source.parent), env=env).value
    serve, port, token = start_serve(env)
    proxy = None
    try:
        if not args.no_proxy:
            proxy = WanProxyProcess(("127.0.0.1", port), args.delay_ms, args.rate_mbps or None).start()
        origin = proxy.url if proxy else f"http://127.0.0.1:{port}"
        link = f"{origin}/{token}/{job_id}/big.bin"
        runs = iter(range(10**6))

        def curl() -> Run:
            out = work / f"curl-{next(runs)}.bin"
            run = run_command("curl -o", ["curl", "-sf", "-o", str(out), link], nbytes=nbytes)
            assert sha256_file(out) == digest, "curl's download differs from the source"
            out.unlink()
            return run

        def ours() -> Run:
            n = next(runs)
            reader = {"JUPYTER_PUBLISH_HOME": str(work / f"reader-{n}"), "JUPYTER_PUBLISH_QUIET": "1"}
            dest = str(work / f"dl-{n}")
            run = run_isolated("fetch(link)", "bench_serve", "ours_fetch", link, dest, env=reader)
            run.nbytes = nbytes
            assert sha256_file(run.value) == digest, "fetch's download differs from the source"
            shutil.rmtree(dest)
            return run

        got_curl, got_ours = best_of(args.repeat, curl, ours)
    finally:
        if proxy:
            proxy.stop()
        serve.terminate()
        serve.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    title = f"A served {args.size_mib:g} MiB file, {link_text(args.no_proxy, args.delay_ms, args.rate_mbps)}"
    rows = [
        Row("served link", got_curl, note="one connection"),
        Row("served link", got_ours, got_curl, "parallel 8 MiB ranges, another home"),
    ]
    print(table(rows, title))
    link_meta = {"delay_ms": args.delay_ms, "rate_mbps": args.rate_mbps}
    save_json(args.json, title, rows, size_mib=args.size_mib, **link_meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
