"""Helpers shared by the benchmark scripts: test data, isolated runs, tables.

Every timed operation runs in a fresh process, so its peak RSS is its own:

* Python operations (:func:`run_isolated`) run in a ``python -c`` child that imports
  the benchmark module first, then times only the call, and reports its peak RSS as
  ``VmHWM`` from ``/proc/self/status``. Not ``ru_maxrss``: on Linux a child's
  ``ru_maxrss`` starts at its parent's peak (the address space it was forked from is
  folded in at ``exec``), so a big parent would hide a small child.
* Programs (:func:`run_command`: curl, sha256sum) run under ``/usr/bin/time -f %M``,
  whose report is the program's own peak (``time`` itself is ≈1 MB).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_publish.testing.measure import peak_rss_kb, sha256_file

MiB = 1024 * 1024
HERE = Path(__file__).resolve().parent
REPO = HERE.parent

_RESULT_MARK = "@@jp-bench-result@@"
_RUNNER = f"""
import importlib, json, sys, time
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["path"]
from common import peak_rss_kb
fn = getattr(importlib.import_module(spec["module"]), spec["func"])
start = time.perf_counter()
value = fn(*spec["args"], **spec["kwargs"])
wall = time.perf_counter() - start
peak = getattr(fn, "peak_kb", None) or peak_rss_kb()
print("{_RESULT_MARK}" + json.dumps({{"wall": wall, "peak_kb": peak, "value": value}}))
"""

_TIME_MARK = "@@jp-bench-maxrss-kb="
GNU_TIME = "/usr/bin/time"


# -- test data -------------------------------------------------------------------------------------


def sha256_stream_block(first: int, count: int) -> bytes:
    """``count`` 32-byte blocks ``sha256(i.to_bytes(8, "big"))`` for ``i = first, first + 1, …``.

    The concatenation for ``i = 0, 1, 2 …`` is the data behind the CID table in
    FACTS.md, so files made from it can be checked against known CIDs.
    """
    sha = hashlib.sha256
    return b"".join([sha(i.to_bytes(8, "big")).digest() for i in range(first, first + count)])


def make_file(path: str | os.PathLike[str], size_mib: int | float, *, pattern: str = "sha256") -> Path:
    """Write a deterministic, incompressible file of ``size_mib`` MiB, one MiB at a time.

    ``pattern="sha256"``: the FACTS.md stream (≈100 MB/s to make); ``"shake"``: block
    ``j`` is ``shake_256(j).digest(1 MiB)`` (≈500 MB/s, for big files when speed matters).
    An existing file of the right size and pattern is reused (a ``.pattern`` marker
    beside it records which one it is).
    """
    target = Path(path)
    size = int(size_mib * MiB)
    marker = target.with_name(target.name + ".pattern")
    if (
        target.is_file()
        and target.stat().st_size == size
        and marker.is_file()
        and marker.read_text() == pattern
    ):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    per_block = MiB // 32
    with open(target, "wb") as out:
        written = block = 0
        while written < size:
            if pattern == "sha256":
                data = sha256_stream_block(block * per_block, per_block)
            elif pattern == "shake":
                data = hashlib.shake_256(block.to_bytes(8, "big")).digest(MiB)
            else:
                raise ValueError(f"unknown pattern {pattern!r}")
            data = data[: size - written]
            out.write(data)
            written += len(data)
            block += 1
    marker.write_text(pattern)
    return target


def make_tree(
    root: str | os.PathLike[str], count: int, size: int, *, per_folder: int = 100, seed: str = "tree"
) -> dict[str, str]:
    """``count`` incompressible files of ``size`` bytes in nested folders; return {relpath: sha256}.

    File ``i`` is ``shake_256(f"{seed}-{i}")`` cut to ``size`` bytes, in
    ``dNNN/eN/fNNNNNN.dat`` (``per_folder`` files per leaf folder, ten leaves per ``dNNN``).
    An existing tree made with the same arguments is reused (a marker file beside it).
    """
    target = Path(root)
    marker = target.with_name(target.name + ".tree")
    spec = f"{count} {size} {per_folder} {seed}"
    names = []
    for i in range(count):
        leaf = i // per_folder
        names.append(f"d{leaf // 10:03d}/e{leaf % 10}/f{i:06d}.dat")
    fresh = not (target.is_dir() and marker.is_file() and marker.read_text() == spec)
    if fresh:
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        marker.unlink(missing_ok=True)
    digests = {}
    for i, name in enumerate(names):
        data = hashlib.shake_256(f"{seed}-{i}".encode()).digest(size)
        if fresh:
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    marker.write_text(spec)
    return digests


def tree_digests(root: str | os.PathLike[str]) -> dict[str, str]:
    """{relpath: sha256} of every file under ``root`` (read back from disk)."""
    base = Path(root)
    return {
        str(path.relative_to(base)): sha256_file(path) for path in sorted(base.rglob("*")) if path.is_file()
    }


CSV_VERSION = "v1"


def make_csv(path: str | os.PathLike[str], size_mib: int | float) -> Path:
    """A deterministic numeric CSV of exactly ``size_mib`` MiB (numpy: ≈ 200 MB/s, else ≈ 15 MB/s).

    Header ``id,a,b,c,d,e,f`` then rows ``0000000001,123.456789,…`` (77 bytes): a running
    10-digit id and six values in [0, 1000) with 6 decimals, from a seeded generator (numpy's
    PCG64 or, without numpy, Python's ``random`` - different bytes, same shape). The last
    row is cut to the size. Reused when it exists with the same size and generator.
    """
    target = Path(path)
    size = int(size_mib * MiB)
    try:
        import numpy as np
    except ImportError:
        np = None  # type: ignore[assignment]
    kind = f"{CSV_VERSION} {'numpy' if np is not None else 'python'}"
    marker = target.with_name(target.name + ".csv-kind")
    if target.is_file() and target.stat().st_size == size and marker.is_file() and marker.read_text() == kind:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    rows_per_block = 50_000
    with open(target, "wb") as out:
        written = out.write(b"id,a,b,c,d,e,f\n")
        block = 0
        rng = np.random.default_rng(20260101) if np is not None else None
        import random

        prng = random.Random(20260101)
        while written < size:
            first = block * rows_per_block + 1
            if np is not None:
                data = _csv_block_numpy(np, rng, first, rows_per_block)
            else:
                data = "".join(
                    f"{first + r:010d}," + ",".join(f"{prng.random() * 1000:010.6f}" for _ in range(6)) + "\n"
                    for r in range(rows_per_block)
                ).encode()
            data = data[: size - written]
            written += out.write(data)
            block += 1
    marker.write_text(kind)
    return target


def _csv_block_numpy(np: Any, rng: Any, first: int, rows: int) -> bytes:
    """``rows`` CSV rows as fixed-width ASCII, built digit by digit with numpy (no per-row Python)."""
    width = 10 + 6 * 11 + 1
    out = np.empty((rows, width), dtype=np.uint8)
    ids = np.arange(first, first + rows, dtype=np.int64)
    values = rng.integers(0, 10**9, size=(rows, 6), dtype=np.int64)  # 123456789 -> 123.456789
    powers = 10 ** np.arange(9, -1, -1, dtype=np.int64)
    out[:, :10] = (ids[:, None] // powers % 10 + 48).astype(np.uint8)
    digits = (values[:, :, None] // powers[1:] % 10 + 48).astype(np.uint8)  # (rows, 6, 9)
    for col in range(6):
        at = 10 + col * 11
        out[:, at] = ord(",")
        out[:, at + 1 : at + 4] = digits[:, col, :3]
        out[:, at + 4] = ord(".")
        out[:, at + 5 : at + 11] = digits[:, col, 3:]
    out[:, -1] = ord("\n")
    return out.tobytes()


def remove(*paths: str | os.PathLike[str]) -> None:
    """Delete files or folders if they exist (benchmarks clean up their big files)."""
    import shutil

    for item in paths:
        p = Path(item)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


# -- isolated runs ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One operation measured in its own process."""

    label: str
    wall: float
    peak_kb: int
    """Peak RSS of the process that did the work, in KiB."""
    value: Any = None
    nbytes: int = 0
    kind: str = "python"
    """``python`` (the child interpreter's peak RSS) or ``command`` (the program's)."""
    walls: list[float] = field(default_factory=list)
    """Every time measured for this operation (see :func:`best_of`)."""

    @property
    def median(self) -> float:
        return statistics.median(self.walls or [self.wall])

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_kb * 1024 / 1e6

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.wall if self.wall > 0 else float("inf")


def run_isolated(
    label: str,
    module: str,
    func: str,
    *args: Any,
    nbytes: int = 0,
    env: dict[str, str] | None = None,
    kind: str = "python",
    timeout: float = 3600.0,
    **kwargs: Any,
) -> Run:
    """Call ``module.func(*args, **kwargs)`` in a fresh interpreter; time it, read its peak RSS.

    ``module`` is imported from the benchmarks folder or the installed packages; its
    arguments and return value must be JSON. The child inherits ``os.environ`` plus ``env``.
    """
    spec = {"path": [str(HERE), str(REPO)], "module": module, "func": func, "args": args, "kwargs": kwargs}
    child_env = {**os.environ, **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_RESULT_MARK)), None)
    if done.returncode != 0 or line is None:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise RuntimeError(f"{label}: {module}.{func} failed (exit {done.returncode}):\n{tail}")
    data = json.loads(line[len(_RESULT_MARK) :])
    return Run(label, data["wall"], data["peak_kb"], data["value"], nbytes, kind)


def run_command(
    label: str, argv: Sequence[str], *, nbytes: int = 0, env: dict[str, str] | None = None
) -> Run:
    """Run a program (``curl``, ``sha256sum``) and time it; its stdout becomes ``value``.

    Peak RSS comes from GNU ``time -f %M``, which reports the program's own. Without
    ``/usr/bin/time`` it is read as ``ru_maxrss`` of a small ``python -c`` wrapper's child,
    which also counts the wrapper's ≈10 MB (see the module doc).
    """
    if not os.access(GNU_TIME, os.X_OK):
        return run_isolated(label, "common", "call", list(argv), nbytes=nbytes, kind="command", env=env)
    start = time.perf_counter()
    done = subprocess.run(
        [GNU_TIME, "-f", f"{_TIME_MARK}%M", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    wall = time.perf_counter() - start
    report = [ln for ln in done.stderr.splitlines() if ln.startswith(_TIME_MARK)]
    if done.returncode != 0 or not report:
        raise RuntimeError(f"{label}: {argv[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return Run(label, wall, int(report[-1][len(_TIME_MARK) :]), done.stdout, nbytes, "command")


def call(argv: list[str]) -> str:
    """Child side of :func:`run_command` without GNU time: run ``argv``, return its stdout.

    The wrapper's peak is then the program's ``ru_maxrss`` (which includes the wrapper's).
    """
    import resource

    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[:500]}")
    call.peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # type: ignore[attr-defined]  # read by the runner
    return done.stdout


def best_of(repeat: int, *measures: Callable[[], Run]) -> list[Run]:
    """Run each measure ``repeat`` times, interleaved (a b a b …), and keep each one's fastest.

    Interleaving spreads slow spells of the server or the machine over every
    contender instead of one. The kept run's ``walls`` lists every time measured and
    its peak RSS is the largest seen over all its runs.
    """
    runs: list[list[Run]] = [[] for _ in measures]
    for _ in range(max(1, repeat)):
        for measure, seen in zip(measures, runs, strict=True):
            seen.append(measure())
    kept = []
    for seen in runs:
        best = min(seen, key=lambda r: r.wall)
        best.walls = sorted(r.wall for r in seen)
        best.peak_kb = max(r.peak_kb for r in seen)
        kept.append(best)
    return kept


# -- reporting -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a results table: an operation and, optionally, its raw baseline."""

    group: str
    run: Run
    baseline: Run | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline is self.run:
            return None
        return self.run.mb_per_s / self.baseline.mb_per_s


def link_text(no_proxy: bool, delay_ms: float, rate_mbps: float | None) -> str:
    """How a table's title names the link it was measured over."""
    if no_proxy:
        return "loopback, no proxy"
    cap = f"{rate_mbps:g} MB/s per connection" if rate_mbps else "no cap"
    return f"WAN proxy: {delay_ms:g} ms each way, {cap}"


def table(rows: Iterable[Row], title: str = "") -> str:
    """A Markdown table: MB/s of the fastest run, best and median time, ratio ours/raw, peak RSS."""
    header = ["operation", "what", "MB/s", "best s", "median s", "ours/raw", "peak RSS MB", "note"]
    lines = []
    for row in rows:
        ratio = row.ratio
        lines.append(
            [
                row.group,
                row.run.label,
                f"{row.run.mb_per_s:,.0f}",
                f"{row.run.wall:.2f}",
                f"{row.run.median:.2f}",
                "" if ratio is None else f"{ratio:.2f}",
                f"{row.run.peak_rss_mb:.0f}",
                row.note,
            ]
        )
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    numeric = {2, 3, 4, 5, 6}

    def fmt(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if i in numeric else "-" * (w + 2) for i, w in enumerate(widths))
        + "|"
    )
    out = [f"### {title}", ""] if title else []
    out += [fmt(header), rule, *(fmt(line) for line in lines)]
    return "\n".join(out)


def machine() -> str:
    """One line describing where the numbers come from."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{time.strftime('%Y-%m-%d')} · {os.cpu_count()} cores {cpu} · Python {platform.python_version()}"
        f" · {platform.system()} {platform.release()}"
    )


def save_json(path: str | os.PathLike[str] | None, title: str, rows: Sequence[Row], **meta: Any) -> None:
    """Append the rows as JSON (for the README or later comparison), if ``path`` is given."""
    if not path:
        return
    doc = {
        "title": title,
        "machine": machine(),
        **meta,
        "rows": [
            {
                "operation": r.group,
                "what": r.run.label,
                "seconds": round(r.run.wall, 3),
                "all_seconds": [round(w, 3) for w in r.run.walls],
                "mb_per_s": round(r.run.mb_per_s, 1),
                "ratio": None if r.ratio is None else round(r.ratio, 3),
                "peak_rss_mb": round(r.run.peak_rss_mb, 1),
                "note": r.note,
                **r.extra,
            }
            for r in rows
        ],
    }
    with open(path, "a") as out:
        out.write(json.dumps(doc) + "\n")


__all__ = ["MiB", "peak_rss_kb", "sha256_file"]
