"""A ``%%publish`` cell's provenance and lineage, through a real IPython shell in a real
git repository: the cell's sha256, the commit, dirtiness, package versions; a secret
in the cell never stored; a fetch before the cell is the job's input."""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from machines import git, make_repo

import jupyter_publish as jp
from jupyter_publish.ledger import Ledger

JOB_ID = re.compile(r"j-[0-9A-Z]{26}")


@pytest.fixture
def run(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)

    def run_cell(code: str):
        with capture_output() as io:
            result = ip.run_cell(code)
        return result, io

    yield run_cell
    for name in ("r", "run_number", "api_token", "f"):
        ip.user_ns.pop(name, None)


def ok(result, io) -> None:
    error = result.error_before_exec or result.error_in_exec
    assert error is None, f"{error!r}\nstdout: {io.stdout}\nstderr: {io.stderr}"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    root = make_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def ledger_bytes() -> bytes:
    home = Path(os.environ["JUPYTER_PUBLISH_HOME"])
    return b"".join(p.read_bytes() for p in sorted(home.glob("ledger.sqlite*")))


CELL = """import pandas as pd
frame = pd.DataFrame({"x": [1, 2]})
frame.to_csv(OUTPUT / "frame.csv", index=False)
"""


def test_publish_cell_records_cell_hash_git_and_package_versions(ip, run, repo):
    result, io = run(f"%%publish --out r --name cellrun\n{CELL}")
    ok(result, io)
    published = ip.user_ns["r"]
    facts = published.provenance
    assert facts["cell_sha256"] == hashlib.sha256(CELL.encode()).hexdigest()
    assert facts["cell_source"] == CELL
    assert facts["magic_line"] == "%%publish --out r --name cellrun"
    assert facts["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False, "branch": "main"}
    assert facts["packages"]["pandas"] == version("pandas")
    import IPython

    assert f"IPython {IPython.__version__}" in facts["kernel"]
    assert facts["status"] == "published"
    # The job began before the cell ran: its start is the begin, its end the publish.
    assert facts["started_at"] < facts["finished_at"]
    # Stored as shown, in the ledger and in jobs().
    assert Ledger().provenance(published.job_id)[0] == facts
    row = jp.jobs().set_index("job_id").loc[published.job_id]
    assert row["git_commit"] == facts["git"]["commit"][:12]
    assert "jupyter-publish-provenance" in published._repr_html_()


def test_a_dirty_repository_is_recorded_dirty(ip, run, repo):
    (repo / "analysis.py").write_text("v = 2\n")
    result, io = run(f"%%publish --out r\n{CELL}")
    ok(result, io)
    git_facts = ip.user_ns["r"].provenance["git"]
    assert git_facts["commit"] == git(repo, "rev-parse", "HEAD")
    assert git_facts["dirty"] is True


def test_outside_a_repository_there_is_no_git_field(ip, run, tmp_path):
    result, io = run(f"%%publish --out r\n{CELL}")
    ok(result, io)
    facts = ip.user_ns["r"].provenance
    assert "git" not in facts
    assert facts["cell_sha256"] == hashlib.sha256(CELL.encode()).hexdigest()


def test_line_values_are_recorded_unless_secret(ip, run, repo):
    ip.user_ns["run_number"] = 7
    ip.user_ns["api_token"] = "tok"  # named like a secret: its value is not recorded
    line = "%%publish --out r --name run{{run_number}}-{{ api_token }}"
    result, io = run(f"{line}\n(OUTPUT / 'a.txt').write_text('a')\n")
    ok(result, io)
    published = ip.user_ns["r"]
    facts = published.provenance
    assert published.name == "run7-tok"
    assert facts["magic_line"] == line
    assert facts["magic_values"] == {"{{run_number}}": "7"}


def test_a_secret_in_the_cell_never_reaches_the_ledger_or_the_outputs(ip, run, repo, monkeypatch):
    from jupyter_publish import redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "EnvKey/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
    redact.register("Registered-Token-abcdef123456")
    cell = (
        "creds = {'aws_secret_access_key': 'EnvKey/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'}\n"
        "token = 'Registered-Token-abcdef123456'\n"
        "db_password = 'correct-horse-battery'\n"
        "gh = 'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB'\n"
        "(OUTPUT / 'ok.txt').write_text('done')\n"
    )
    result, io = run(f"%%publish --out r\n{cell}")
    ok(result, io)
    published = ip.user_ns["r"]
    stored = ledger_bytes()
    shown = json.dumps(published.to_dict()) + published._repr_html_()
    for secret in (
        "EnvKey/zzzzzzzz",
        "Registered-Token-abcdef123456",
        "correct-horse-battery",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
    ):
        assert secret.encode() not in stored, secret
        assert secret not in shown, secret
    assert published.provenance["cell_sha256"] == hashlib.sha256(cell.encode()).hexdigest()
    assert "(OUTPUT / 'ok.txt').write_text('done')" in published.provenance["cell_source"]


def test_a_failed_cell_keeps_its_provenance(ip, run, repo):
    cell = "(OUTPUT / 'part.txt').write_text('x')\n1 / 0\n"
    result, _ = run(f"%%publish\n{cell}")
    assert isinstance(result.error_in_exec, UsageError)
    (job_id,) = JOB_ID.findall(str(result.error_in_exec))[:1]
    status = Ledger().status(job_id)
    assert status["status"] == "failed"
    facts, _ = Ledger().provenance(job_id)
    assert facts["status"] == "failed"
    assert facts["cell_sha256"] == hashlib.sha256(cell.encode()).hexdigest()
    assert facts["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert facts["duration_s"] >= 0


def test_a_cell_after_a_fetch_has_the_fetched_job_as_input(ip, run, tmp_path):
    source = tmp_path / "inputs"
    source.mkdir()
    (source / "raw.csv").write_text("a\n1\n")
    upstream = jp.publish(source)
    result, io = run(f"%fetch {upstream.job_id} --to {tmp_path / 'got'} --no-preview")
    ok(result, io)
    result, io = run("%%publish --out r\n(OUTPUT / 'derived.csv').write_text('b\\n2\\n')\n")
    ok(result, io)
    produced = ip.user_ns["r"]
    assert {"ref": upstream.job_id, "kind": "job", "job_id": upstream.job_id, "via": "fetch"}.items() <= (
        produced.inputs[0].items()
    )
    edges = jp.lineage(produced.job_id)
    assert list(zip(edges["used_job"], edges["produced"], edges["via"], strict=True)) == [
        (upstream.job_id, produced.job_id, "fetch")
    ]
    result, io = run(f"%jobs --lineage {produced.job_id}")
    ok(result, io)
    shown = result.result
    assert list(shown["used_job"]) == [upstream.job_id]


def test_uses_on_the_line_is_an_input(ip, run, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    upstream = jp.publish(tmp_path / "a.txt")
    result, io = run(f"%%publish --out r --uses {upstream.root_cid}\n(OUTPUT / 'b.txt').write_text('b')\n")
    ok(result, io)
    (entry,) = [i for i in ip.user_ns["r"].inputs if i["via"] == "line"]
    assert entry == {
        "ref": upstream.root_cid,
        "kind": "cid",
        "job_id": upstream.job_id,
        "cid": upstream.root_cid,
        "via": "line",
    }


def test_line_magic_uses_and_records_the_line(ip, run, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    upstream = jp.publish(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_text("b")
    result, io = run(f"%publish b.txt --uses {upstream.job_id} --out r")
    ok(result, io)
    produced = ip.user_ns["r"]
    assert produced.provenance["magic_line"] == f"%publish b.txt --uses {upstream.job_id} --out r"
    assert "cell_source" not in produced.provenance
    assert [i["job_id"] for i in produced.inputs] == [upstream.job_id]


def test_uses_naming_nothing_fails_before_the_cell_runs(ip, run, tmp_path):
    result, _ = run("%%publish --uses no/such/thing\nran = True\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no/such/thing" in str(result.error_in_exec)
    assert "ran" not in ip.user_ns
    assert Ledger().jobs() == []
