"""The magics' small things (issue 13 item 5), through a real IPython shell: a bad
``%config`` value, ``%publish df``'s name, ``%%publish?``."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from IPython.utils.capture import capture_output


@pytest.fixture
def magics(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    instance = ip.magics_manager.registry["PublishMagics"]
    yield instance
    if "PublishMagics" in ip.config:
        del ip.config["PublishMagics"]
    for name in instance.class_trait_names(config=True):
        setattr(instance, name, instance.trait_defaults(name))
    for name in ("r", "df", "frame"):
        ip.user_ns.pop(name, None)


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
