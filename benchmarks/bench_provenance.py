"""What provenance and lineage add to a publish: the smallest publish there is (one small
file to the local store, where nothing hides a fixed cost), with and without them.

Runs alternate (one with, one without, N times) so a busy machine weighs on both the
same; medians are printed, with the parts: ``capture()`` (git included, waited for),
the package list (cached per process), a job's inputs. ``--repo DIR`` runs inside a git
repository (``git status`` is the largest part: a few ms, more in a large repository,
read in a thread while the bytes move). No server needed.

    python benchmarks/bench_provenance.py --runs 40 [--repo .]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def timed(func: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        began = time.perf_counter()
        func()
        out.append(time.perf_counter() - began)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--repo", metavar="DIR", help="work inside this git repository")
    parser.add_argument("--json", metavar="FILE", help="append the results as one JSON line")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="jp-bench-prov-"))
    os.environ["JUPYTER_PUBLISH_HOME"] = str(work / "home")
    os.environ["JUPYTER_PUBLISH_QUIET"] = "1"
    os.chdir(args.repo or work)
    source = work / "results"
    source.mkdir()
    (source / "x.txt").write_text("hello\n")

    import pandas  # noqa: F401  (a kernel has imported more than the package itself)

    import jupyter_publish as jp
    from jupyter_publish import provenance
    from jupyter_publish.ledger import Ledger

    lineage = importlib.import_module("jupyter_publish.lineage")  # jp.lineage is the function
    jp.publish(source)  # the first publish also scans the installed distributions
    real_begin = provenance.begin
    with_it: list[float] = []
    without: list[float] = []
    for _ in range(args.runs):
        provenance.begin = real_begin
        with_it += timed(lambda: jp.publish(source), 1)
        provenance.begin = lambda *a, **k: {}  # type: ignore[assignment]
        without += timed(lambda: jp.publish(source), 1)
    provenance.begin = real_begin
    ledger = Ledger()
    found = {
        "where": "git repository" if provenance.git_state(Path.cwd()) else "no repository",
        "runs": args.runs,
        "publish_with_ms": median_ms(with_it),
        "publish_without_ms": median_ms(without),
        "added_ms": round(median_ms(with_it) - median_ms(without), 2),
        "capture_ms": median_ms(timed(provenance.capture, args.runs)),
        "packages_ms": median_ms(timed(provenance.imported_packages, args.runs)),
        "packages": len(provenance.imported_packages()),
        "inputs_ms": median_ms(timed(lambda: lineage.inputs_for(ledger, (), [source]), args.runs)),
        "python": sys.version.split()[0],
    }
    for key, value in found.items():
        print(f"{key:>20}: {value}")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"bench": "provenance", **found}) + "\n")


if __name__ == "__main__":
    main()
