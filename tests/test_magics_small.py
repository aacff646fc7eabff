"""The magics' small things (issue 13 items 5 and 12), through a real IPython shell: a bad
``%config`` value, ``%publish df``'s name, ``%%publish?``, ``--sync-every`` durations, and
sync lines in time order in a real kernel."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from IPython.utils.capture import capture_output

import jupyter_publish


def run(ip, code: str):
    with capture_output() as io:
        result = ip.run_cell(code)
    return result, io


def ok(result, io):
    error = result.error_before_exec or result.error_in_exec
    assert error is None, f"{error!r}\nstdout: {io.stdout}\nstderr: {io.stderr}"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (
            "PublishMagics.compression = 'lzma'",
            "PublishMagics.compression must be gzip, zstd or none, not 'lzma'",
        ),
        ("PublishMagics.cid_version = 'x'", "PublishMagics.cid_version expected an int, not the str 'x'"),
        ("PublishMagics.quiet = 3", "PublishMagics.quiet expected a boolean, not the int 3"),
        ("PublishMagics.max_concurrency = 500", "PublishMagics.max_concurrency must be 1 to"),
    ],
)
def test_a_bad_config_value_is_one_usage_error_line(ip, magics, caplog, line, says):
    before = {
        name: getattr(magics, name) for name in ("compression", "cid_version", "quiet", "max_concurrency")
    }
    with caplog.at_level(logging.ERROR):
        _, io = run(ip, f"%config {line}")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text  # no ERROR:root:
    lines = io.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"UsageError: {says}"), io.stderr
    assert "Traceback" not in io.stderr + io.stdout
    assert {name: getattr(magics, name) for name in before} == before  # the old value stays
    ok(*run(ip, "%config PublishMagics.compression = 'zstd'"))  # a good value still applies
    assert magics.compression == "zstd"


def test_publish_on_error_is_in_the_magics_help(ip, magics):
    _, io = run(ip, "%%publish?")
    assert "--publish-on-error" in io.stdout
    assert "publish OUTPUT even if the cell raised" in " ".join(io.stdout.split())


def test_publish_a_variable_names_the_job_after_it(ip, magics):
    ip.user_ns["df"] = pd.DataFrame({"a": [1, 2]})
    ok(*run(ip, "%publish df --out r"))
    r = ip.user_ns["r"]
    assert r.name == "df"
    jobs = ip.run_line_magic("jobs", "")
    assert jobs.set_index("job_id").loc[r.job_id, "name"] == "df"  # the ledger, as the card says
    ok(*run(ip, "%publish df --name mine --out r"))  # a name given wins
    assert ip.run_line_magic("jobs", "").set_index("job_id").loc[ip.user_ns["r"].job_id, "name"] == "mine"


@pytest.mark.parametrize("every", ["500ms", "1", "0.02m"])
def test_sync_every_takes_durations(ip, magics, every):
    result, io = run(
        ip,
        f"%%publish local --sync-every {every} --out r\n"
        "import time as _t\n"
        "(OUTPUT / 'first.txt').write_text('1')\n"
        "_t.sleep(1.6)\n",
    )
    ok(result, io)
    r = ip.user_ns["r"]
    jobs = ip.run_line_magic("jobs", "")
    assert list(jobs["job_id"]) == [r.job_id]  # one job …
    assert jobs.iloc[0]["rounds"] >= 1  # … with its rounds counted
    assert re.search(r"synced 1 file to .* \(round 1, job j-", io.stdout), io.stdout


@pytest.mark.parametrize("every", ["2x", "0", "-1s", "soon"])
def test_a_bad_sync_every_is_one_line(ip, magics, every):
    result, _ = run(ip, f"%%publish local --sync-every={every}\n(OUTPUT / 'x').write_text('x')")
    message = str(result.error_in_exec)
    assert type(result.error_in_exec).__name__ == "UsageError" and "\n" not in message
    said = "must be positive" if every[0] in "0-" else "cannot read duration"
    assert message.startswith("--sync-every: ") and said in message and "2s" in message
    assert ip.run_line_magic("jobs", "").empty  # refused before the cell ran


def test_sync_lines_come_in_time_order_with_the_cells_output(tmp_path):
    """In a real kernel the sync notes are stream output of the cell itself, between what
    the cell printed before and after the round (not a widget shown above it)."""
    jupyter_client = pytest.importorskip("jupyter_client")
    package_root = Path(jupyter_publish.__file__).resolve().parent.parent  # this code, not an install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), *sys.path])}
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive("%load_ext jupyter_publish", timeout=60)
        code = (
            "%%publish local --sync-every 0.3\n"
            "import time\n"
            "print('before', flush=True)\n"
            "(OUTPUT / 'a.txt').write_text('a')\n"
            "time.sleep(1.5)\n"
            "print('after', flush=True)\n"
        )
        messages = []
        reply = client.execute_interactive(code, timeout=120, output_hook=messages.append)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    streams = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    assert re.search(r"jupyter-publish: synced \d files? to", streams), (
        streams,
        [m["msg_type"] for m in messages],
    )
    before, synced, after = (streams.index(t) for t in ("before", "jupyter-publish: synced", "after"))
    assert before < synced < after, streams
    assert not any(m["msg_type"] == "comm_open" for m in messages)  # no widget for notes
