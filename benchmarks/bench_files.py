"""Per-file cost on the local store: many small files, against tar and a plain hashlib walk.

Makes N files of K KiB (default 20,000 × 2 KiB, incompressible, deterministic) in nested
folders (100 per folder), then times, each in a fresh process with a fresh, temporary
``JUPYTER_PUBLISH_HOME`` (removed afterwards, so nothing is deduplicated between runs and
nothing touches the user's store):

* ``tar czf`` of the folder (the reference for an archive publish),
* ``publish(folder, to="local")`` (archive, the default) and ``archive=False``,
* ``cid_of(folder)`` against a plain Python walk (``os.walk`` + ``hashlib.sha256`` of each file).

Every run is checked: the recorded sha256 of each file equals the source's, the tarball
holds N files, and ``cid_of`` equals the root CID both publishes recorded.

``--scale`` instead publishes (``archive=False``) N/4, N/2 and N files, to show whether the
time grows linearly with the number of files.

    python benchmarks/bench_files.py [--files 20000] [--file-kib 2] [--repeat 1] [--scale]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    MiB,
    Row,
    Run,
    best_of,
    machine,
    make_tree,
    remove,
    run_command,
    run_isolated,
    save_json,
    table,
)

# Imported here so that each child pays for imports before its clock starts.
import jupyter_publish
import jupyter_publish.api
import jupyter_publish.cid
import jupyter_publish.publisher

# -- operations (each runs in its own child process) ------------------------------------------------


def ours_publish(folder: str, archive: bool) -> dict[str, Any]:
    result = jupyter_publish.publish(folder, to="local", archive=archive, quiet=True)
    return {
        "job_id": result.job_id,
        "root_cid": result.root_cid,
        "files": {f.path: f.sha256 for f in result.files if f.kind == "file"},
    }


def ours_cid(folder: str) -> str:
    return jupyter_publish.cid_of(folder)


def hash_walk(folder: str) -> dict[str, str]:
    """What a user would write: walk the tree, sha256 every file."""
    digests = {}
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while block := handle.read(MiB):
                    digest.update(block)
            digests[os.path.relpath(path, folder)] = digest.hexdigest()
    return digests


# -- the benchmark ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work

    def isolated(self, label: str, func: str, *args: Any, nbytes: int) -> Run:
        """``func`` in a fresh process with its own, fresh JUPYTER_PUBLISH_HOME (removed after)."""
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.work))
        env = {"JUPYTER_PUBLISH_HOME": str(home), "JUPYTER_PUBLISH_QUIET": "1"}
        try:
            return run_isolated(label, "bench_files", func, *args, nbytes=nbytes, env=env)
        finally:
            remove(home)

    def tar(self, folder: Path, count: int, nbytes: int) -> Run:
        out = self.work / "ref.tar.gz"
        try:
            run = run_command("tar czf", ["tar", "czf", str(out), "-C", str(folder), "."], nbytes=nbytes)
            with tarfile.open(out) as tar:
                members = sum(m.isfile() for m in tar)
            if members != count:
                raise SystemExit(f"tar czf: {members} files in the tarball, expected {count}")
            run.value = out.stat().st_size
            return run
        finally:
            remove(out)

    def publish(self, folder: Path, archive: bool, digests: dict[str, str], nbytes: int) -> Run:
        label = "publish local" + ("" if archive else " archive=False")
        run = self.isolated(label, "ours_publish", str(folder), archive, nbytes=nbytes)
        if run.value["files"] != digests:
            raise SystemExit(f"{label}: recorded sha256s differ from the source files'")
        return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000, help="number of files (default 20,000)")
    parser.add_argument("--file-kib", type=float, default=2, help="size of each file in KiB (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per operation; the fastest is shown")
    parser.add_argument("--scale", action="store_true", help="publish N/4, N/2, N files (archive=False)")
    parser.add_argument("--workdir", help="keep the test tree here (reused next time)")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    args = parser.parse_args(argv)

    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jp-bench-files-"))
    work.mkdir(parents=True, exist_ok=True)
    size = int(args.file_kib * 1024)
    print(f"# bench_files · {machine()}")
    bench = Bench(work)
    try:
        if args.scale:
            rows, title = _scale(args, bench, work, size)
        else:
            rows, title = _main_rows(args, bench, work, size)
    finally:
        if own_workdir:
            remove(work)
    print()
    print(table(rows, title))
    save_json(args.json, title, rows, files=args.files, file_bytes=size, repeat=args.repeat, scale=args.scale)
    return 0


def _tree(work: Path, count: int, size: int) -> tuple[Path, dict[str, str]]:
    start = time.perf_counter()
    folder = work / f"tree-{count}x{size}"
    digests = make_tree(folder, count, size, seed="files")
    print(f"{count:,} files of {size:,} bytes in {folder} ready in {time.perf_counter() - start:.1f} s")
    return folder, digests


def _main_rows(args: argparse.Namespace, bench: Bench, work: Path, size: int) -> tuple[list[Row], str]:
    folder, digests = _tree(work, args.files, size)
    nbytes = args.files * size
    measures: list[Callable[[], Run]] = [
        lambda: bench.tar(folder, args.files, nbytes),
        lambda: bench.publish(folder, True, digests, nbytes),
        lambda: bench.publish(folder, False, digests, nbytes),
        lambda: bench.isolated("hashlib walk", "hash_walk", str(folder), nbytes=nbytes),
        lambda: bench.isolated("cid_of", "ours_cid", str(folder), nbytes=nbytes),
    ]
    tar, packed, plain, walk, cid = best_of(args.repeat, *measures)
    if walk.value != digests:
        raise SystemExit("hashlib walk: digests differ from the source files'")
    roots = {packed.value["root_cid"], plain.value["root_cid"], cid.value}
    if len(roots) != 1:
        raise SystemExit(f"cid_of and the publishes disagree on the folder's CID: {roots}")

    def per_file(run: Run) -> str:
        return f"{run.wall / args.files * 1e6:,.0f} µs/file"

    rows = [
        Row("archive", tar, note=f"{per_file(tar)}; {tar.value / MiB:,.1f} MiB tarball"),
        Row("archive", packed, tar, f"{per_file(packed)}; tar.gz + sha256/CID of every file, stored"),
        Row("plain", plain, tar, f"{per_file(plain)}; every file stored, ratio against tar czf"),
        Row("hash", walk, note=per_file(walk)),
        Row("hash", cid, walk, f"{per_file(cid)}; {cid.value}"),
    ]
    title = f"Local store, {args.files:,} files × {size:,} bytes, best of {args.repeat}"
    return rows, title


def _scale(args: argparse.Namespace, bench: Bench, work: Path, size: int) -> tuple[list[Row], str]:
    counts = sorted({max(1, args.files // 4), max(1, args.files // 2), args.files})
    trees = [_tree(work, n, size) for n in counts]
    measures = [
        (lambda f=folder, d=digests, n=n: bench.publish(f, False, d, n * size))
        for n, (folder, digests) in zip(counts, trees, strict=True)
    ]
    runs = best_of(args.repeat, *measures)
    first = runs[0].wall / counts[0]
    rows = []
    for n, run in zip(counts, runs, strict=True):
        linear = run.wall / (first * n)
        rows.append(Row(f"{n:,} files", run, note=f"{run.wall / n * 1e6:,.0f} µs/file; {linear:.2f}× linear"))
    title = f"Local store, publish archive=False at N/4, N/2, N ({size:,}-byte files), best of {args.repeat}"
    return rows, title


if __name__ == "__main__":
    sys.exit(main())
