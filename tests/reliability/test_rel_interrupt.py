"""Ctrl-C stops any transfer within a second or two (issue 9, item 5), even a stalled one.

The command line publishes or fetches through a proxy that stalls the store (the idle
limit stays at its default of 60 s, so only the interrupt can end it): SIGINT once the
stall has started, and the process must exit non-zero with one line, in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from fault_proxy import Fault, FaultProxy
from rel_stores import KINDS, MiB, Store, source

LIMIT = 3.0
"""Seconds from SIGINT to the process's exit."""


def _interrupt(cmd: list[str], proxy: FaultProxy) -> tuple[int, float, str]:
    env = {**os.environ, "JUPYTER_PUBLISH_IDLE_TIMEOUT": "60"}
    child = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not proxy.fired and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert proxy.fired, "the transfer never reached the stall"
        time.sleep(0.3)  # well inside the stalled read
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, err = child.communicate(timeout=30)
        return child.returncode, time.monotonic() - sent, err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def _check(code: int, took: float, err: str, what: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert took < LIMIT, (took, err)
    print(f"{what}: stopped {took:.2f}s after Ctrl-C: {lines[0]}")


CLI = [sys.executable, "-m", "jupyter_publish.cli"]
QUIET = "--quiet"  # the progress bar would be a line of its own


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_stops_a_stalled_publish(request, tmp_path, kind):
    store = Store(kind, request)
    src = source(tmp_path, 2 * MiB)
    with FaultProxy(store.port) as proxy:
        proxy.add(Fault("stall", direction="down", at=0, times=1000))  # no answer, ever
        cmd = [*CLI, "publish", QUIET, str(src), "--no-archive", *store.cli_destination(proxy)]
        code, took, err = _interrupt(cmd, proxy)
    _check(code, took, err, f"{kind} publish")


CASES = [("s3", 3 * MiB), ("s3", 20 * MiB), ("http", 3 * MiB), ("http", 20 * MiB), ("ipfs", 3 * MiB)]


@pytest.mark.servers  # Store asks for the server fixture by name
@pytest.mark.parametrize("kind,size", CASES, ids=[f"{k}-{s // MiB}MiB" for k, s in CASES])
def test_ctrl_c_stops_a_stalled_fetch(request, tmp_path, kind, size):
    """3 MiB are read in the calling thread, 20 MiB in parallel ranges (worker threads)."""
    store = Store(kind, request)
    src = source(tmp_path, size)
    with FaultProxy(store.port) as proxy:
        result = store.publish(src, proxy)
        proxy.add(Fault("stall", direction="down", at=256 * 1024, times=1000))
        cmd = [*CLI, "fetch", QUIET, result.job_id, "--to", str(tmp_path / "out")]
        code, took, err = _interrupt(cmd, proxy)
    _check(code, took, err, f"{kind} fetch {size // MiB} MiB")
    assert not (tmp_path / "out" / "data.bin").exists()
