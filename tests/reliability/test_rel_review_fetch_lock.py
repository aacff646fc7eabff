"""A fetch waiting for the destination lock costs a stat or two per poll (review, item 3).

The waiter used to walk the holder's whole staging tree every 50 ms (heavy while an
archive of many members is unpacked). Now the holder touches its lock file as it makes
progress (the progress hook, and a beat while it unpacks), and the waiter only looks at
that file and the destination, polling less often the longer it waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from jupyter_publish.fetcher import destination_lock

ROOT = Path(__file__).resolve().parents[2]

_HOLDER = """
import sys, time
from pathlib import Path
from jupyter_publish.fetcher import destination_lock
from jupyter_publish.progress import progress_bar

files, seconds = int(sys.argv[2]), float(sys.argv[3])
with destination_lock(Path(sys.argv[1])) as staging:
    tree = staging / "tree"
    tree.mkdir(parents=True)
    for i in range(files):
        (tree / f"m{i}").write_bytes(b"x")
    print("held", flush=True)
    with progress_bar(None, "fetch", quiet=True) as update:
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # bytes arriving, as a download reports them
            if update is not None:  # (None where nothing listens)
                update(1024)
            time.sleep(0.1)
"""


def _hold(dest: Path, files: int, seconds: float) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    args = [sys.executable, "-c", _HOLDER, str(dest), str(files), str(seconds)]
    holder = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_waiting_fetch_never_walks_the_staging_tree(tmp_path, monkeypatch):
    walks = []
    real_walk = os.walk

    def counting_walk(top, *args, **kwargs):
        walks.append(str(top))
        return real_walk(top, *args, **kwargs)

    dest = tmp_path / "back"
    holder = _hold(dest, files=5000, seconds=2.0)
    try:
        monkeypatch.setattr(os, "walk", counting_walk)
        started, cpu = time.monotonic(), time.process_time()
        with destination_lock(dest) as staging:
            waited, used = time.monotonic() - started, time.process_time() - cpu
            assert staging.name == ".back.jp-partial"
    finally:
        holder.kill()
        holder.wait()
    assert waited > 1.0  # it did wait for the holder
    assert walks == [], f"the waiter walked the staging tree {len(walks)} times"
    assert used < 0.3, f"the waiter used {used:.2f} s of CPU in {waited:.1f} s"
    print(f"waited {waited:.2f} s, {used * 1000:.0f} ms CPU, {len(walks)} walks")


def test_a_holder_making_progress_past_the_idle_limit_is_waited_for(tmp_path, monkeypatch):
    """Bytes reported through the progress hook keep the waiter waiting, although nothing
    in the staging folder or the destination changes."""
    monkeypatch.setenv("JUPYTER_PUBLISH_IDLE_TIMEOUT", "1")
    dest = tmp_path / "back"
    holder = _hold(dest, files=0, seconds=3.0)
    try:
        started = time.monotonic()
        with destination_lock(dest):
            waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 2.0 < waited < 6.0, waited


def test_without_fcntl_a_fetch_stages_in_a_folder_of_its_own(tmp_path, monkeypatch):
    """Windows has no fcntl: the documented no-lock fallback, not an ImportError."""
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    with destination_lock(tmp_path / "out") as staging:
        assert staging.name.startswith(".out.jp-partial-")
    assert not (tmp_path / ".out.jp-lock").exists()
