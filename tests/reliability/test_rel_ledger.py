"""The ledger on a fresh home: many creators at once, and job-ID prefixes matched literally."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.errors import NotFoundError
from jupyter_publish.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 50

# One creator process: waits for the common start time, then creates the ledger from
# several threads and writes a job, so creation meets creation and writing alike.
CREATOR = r"""
import sys, threading, time, traceback
from pathlib import Path
from jupyter_publish.ledger import Ledger

path, start, tag = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
errors = []

def work(i):
    while time.time() < start:
        pass
    try:
        Ledger(path).start(job_id=f"j-{tag}-{i}", execution_id="e", node_id="n", name="x",
                           scheme="local", destination="local")
    except BaseException:
        errors.append(traceback.format_exc().strip().splitlines()[-1])

threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("\n".join(errors))
sys.exit(1 if errors else 0)
"""

# Watches for the ledger file and reads its header the moment it appears: a ledger
# is never visible half-made (empty, not yet WAL, or without its tables).
WATCHER = r"""
import sys, os, time
path, deadline = sys.argv[1], time.time() + 10
while not os.path.exists(path):
    if time.time() > deadline:
        sys.exit("never appeared")
with open(path, "rb") as f:
    head = f.read(100)
ok = len(head) == 100 and head[:16] == b"SQLite format 3\0" and head[18:20] == b"\2\2"
print("ok" if ok else f"half-made: {len(head)} header bytes, format {head[18:20]!r}")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_many_threads_and_processes_create_one_fresh_ledger(tmp_path: Path) -> None:
    """50 rounds of 3 processes x 4 threads plus 4 in-process threads: no error, ever."""
    failures: list[str] = []
    for round_ in range(ROUNDS):
        path = tmp_path / f"r{round_}" / "ledger.sqlite"
        path.parent.mkdir()
        start = time.time() + 0.3
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CREATOR, str(path), str(start), f"p{n}"],
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for n in range(3)
        ]
        errors: list[str] = []

        def work(i: int, path: Path = path, start: float = start, errors: list[str] = errors) -> None:
            while time.time() < start:
                time.sleep(0.001)
            try:
                _add(Ledger(path), f"j-t-{i}")
            except Exception as exc:  # reported below
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        for p in procs:
            out, _ = p.communicate(timeout=60)
            if p.returncode:
                errors.append(out.strip())
        failures += [f"round {round_}: {e}" for e in errors]
        if not errors:
            assert len(Ledger(path).jobs()) == 16
            assert sorted(os.listdir(path.parent)) in (
                ["ledger.sqlite"],
                ["ledger.sqlite", "ledger.sqlite-shm", "ledger.sqlite-wal"],
            ), "no temporary ledgers left behind"
    assert not failures, failures[:3]


def test_a_ledger_is_never_visible_half_made(tmp_path: Path) -> None:
    """The file that appears at the ledger's path is already WAL with its schema."""
    seen = []
    for round_ in range(ROUNDS):
        path = tmp_path / f"r{round_}" / "ledger.sqlite"
        path.parent.mkdir()
        argv = [sys.executable, "-c", WATCHER, str(path)]
        watcher = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(0.05)  # the watcher is polling before the ledger is created
        Ledger(path)
        out, _ = watcher.communicate(timeout=30)
        seen.append(out.strip())
    assert set(seen) == {"ok"}, [s for s in seen if s != "ok"][:3]


def _add(ledger: Ledger, job_id: str) -> None:
    ledger.start(job_id=job_id, execution_id="e", node_id="n", name="x", scheme="local", destination="local")


@pytest.mark.parametrize(
    "prefix",
    ["j-01X%", "j-01%Z", "j-01_Y", "j-0__YZ", "%", "_", "j-01X_Z1", "j-%", "j-01\\", "j-01XY%1"],
)
def test_job_id_prefix_is_matched_literally(prefix: str) -> None:
    ledger = Ledger()
    _add(ledger, "j-01XYZ1")
    _add(ledger, "j-01ABC2")
    with pytest.raises(NotFoundError, match="no job"):
        ledger.status(prefix)
    with pytest.raises(NotFoundError, match="no job"):
        jp.fetch(prefix)
    with pytest.raises(NotFoundError, match="no job"):
        jp.cids(prefix)


def test_prefixes_with_wildcard_characters_still_find_their_job() -> None:
    ledger = Ledger()
    _add(ledger, "j-01XYZ1")
    _add(ledger, "j-01_%\\Z")
    assert ledger.status("j-01_%")["job_id"] == "j-01_%\\Z"
    assert ledger.status("j-01_%\\")["job_id"] == "j-01_%\\Z"
    assert ledger.status("j-01XY")["job_id"] == "j-01XYZ1"
    assert ledger.status("j-01xy")["job_id"] == "j-01XYZ1"  # ASCII case still folds, as before
    with pytest.raises(NotFoundError, match="ambiguous"):
        ledger.status("j-01")
