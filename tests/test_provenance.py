"""Provenance of every job, through the API and the command line: git, packages,
host/user/time, status, failed jobs too, and never a secret."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from machines import git, make_repo

import jupyter_publish as jp
from jupyter_publish import provenance, redact
from jupyter_publish.errors import SourceError
from jupyter_publish.ledger import Ledger
from jupyter_publish.publisher import begin_job


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with one commit and a results folder; the working folder."""
    root = make_repo(tmp_path / "repo", "print('v1')\n")
    (root / "results").mkdir()
    (root / "results" / "table.csv").write_text("x\n1\n")
    monkeypatch.chdir(root)
    return root


def ledger_bytes(home: Path) -> bytes:
    """Every byte the ledger holds on disk (its WAL included)."""
    return b"".join(p.read_bytes() for p in sorted(home.glob("ledger.sqlite*")))


# -- what every publish records ---------------------------------------------------------


def test_publish_in_a_clean_repository_records_its_commit(repo):
    result = jp.publish("results")
    facts = result.provenance
    assert facts["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert facts["git"]["dirty"] is False  # results/ is untracked: outputs do not make it dirty
    assert facts["git"]["branch"] == "main"
    assert "remote" not in facts["git"]
    assert facts["status"] == "published"
    assert facts["python"] == platform.python_version()
    assert facts["user"] and facts["host"] == __import__("socket").gethostname()
    assert facts["tool"] == f"jupyter-publish {jp.__version__}"
    assert facts["started_at"] <= facts["finished_at"] and facts["duration_s"] >= 0
    assert facts["started_at"].endswith("Z")
    assert "cell_source" not in facts and "magic_line" not in facts


def test_a_changed_tracked_file_makes_it_dirty(repo):
    (repo / "analysis.py").write_text("print('v2')\n")
    facts = jp.publish("results").provenance
    assert facts["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": True, "branch": "main"}


def test_the_remote_is_recorded_without_its_credentials(repo):
    git(
        repo,
        "remote",
        "add",
        "origin",
        "https://alice:ghp_s3cretTOKENvalue1234567890abcdefABCD@example.com/team/x.git",
    )
    facts = jp.publish("results").provenance
    assert facts["git"]["remote"] == "https://example.com/team/x.git"
    assert b"s3cretTOKEN" not in ledger_bytes(Path(os.environ["JUPYTER_PUBLISH_HOME"]))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://TOKEN123456@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://u:p%40ss@host:8443/a.git?x=1", "https://host:8443/a.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("ssh://git@[::1]:22/srv/x.git", "ssh://[::1]:22/srv/x.git"),
    ],
)
def test_strip_credentials(url, shown):
    assert provenance.strip_credentials(url) == shown


def test_no_repository_no_git_field(outside):
    facts = jp.publish("results").provenance
    assert "git" not in facts
    assert facts["status"] == "published"


def test_no_git_program_no_git_field(repo, monkeypatch, tmp_path):
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    facts = jp.publish("results").provenance
    assert "git" not in facts


def test_a_repository_without_commits_has_no_git_field(tmp_path, monkeypatch):
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    (root / "out.txt").write_text("x")
    monkeypatch.chdir(root)
    assert "git" not in jp.publish("out.txt").provenance


def test_the_notebooks_repository_wins_over_the_working_folder(repo, outside, monkeypatch):
    # cwd is `outside` (no repository); the notebook lives in `repo`.
    notebook = repo / "analysis.ipynb"
    notebook.write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    facts = jp.publish("results").provenance
    assert facts["notebook"] == str(notebook)
    assert facts["git"]["commit"] == git(repo, "rev-parse", "HEAD")


def test_packages_are_the_imported_distributions_with_their_versions(outside):
    import pandas  # noqa: F401  (imported: recorded)

    packages = jp.publish("results").provenance["packages"]
    assert packages["pandas"] == version("pandas") == sys.modules["pandas"].__version__
    assert packages["numpy"] == version("numpy")
    assert "jupyter-publish" in packages or "jupyter_publish" in packages
    for name in ("json", "os", "sqlite3"):  # the standard library is not a package
        assert name not in packages


def test_packages_never_imported_are_not_listed():
    code = (
        "import json, sys\n"
        "from jupyter_publish.provenance import imported_packages\n"
        "found = imported_packages()\n"
        "print(json.dumps([sorted(found), 'pandas' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, pandas_loaded = json.loads(out.stdout)
    assert not pandas_loaded
    assert "pandas" not in names and "ipython" not in [n.lower() for n in names]


def test_packages_agree_with_importlib_metadata():
    """The dist-info scan finds what ``packages_distributions()`` (every RECORD read)
    finds, modules named unlike their distribution included (dateutil, zmq, yaml, PIL)."""
    code = (
        "import json, sys\n"
        "import pandas, dateutil.parser, zmq, yaml, PIL.Image, IPython\n"
        "from importlib.metadata import packages_distributions, version\n"
        "from jupyter_publish.provenance import imported_packages\n"
        "mine = imported_packages()\n"
        "owners = packages_distributions()\n"
        "tops = {m.partition('.')[0] for m in sys.modules}\n"
        "theirs = {d: version(d) for t in tops for d in owners.get(t, ())}\n"
        "print(json.dumps([mine, theirs]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mine, theirs = json.loads(out.stdout)

    def normal(name: str) -> str:
        return name.lower().replace("_", "-")

    assert {normal(k): v for k, v in theirs.items()}.items() <= {
        normal(k): v for k, v in mine.items()
    }.items()
    assert {"python-dateutil", "pyzmq", "pyyaml", "pillow", "pandas", "ipython"} <= {normal(k) for k in mine}


def test_kernel_versions_come_from_what_is_imported():
    import IPython  # the test process has it

    assert provenance.kernel_version() is not None
    assert f"IPython {IPython.__version__}" in (provenance.kernel_version() or "")


def test_provenance_capture_does_not_import_ipython():
    code = (
        "import json, sys\n"
        "from jupyter_publish.provenance import capture\n"
        "facts = capture({'cell_source': 'x = 1'})\n"
        "print(json.dumps(['IPython' in sys.modules, 'kernel' in facts]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False]


# -- stored, listed, shown ----------------------------------------------------------------


def test_provenance_is_in_the_ledger_the_result_json_and_jobs(repo):
    result = jp.publish("results")
    ledger = Ledger()
    stored, inputs = ledger.provenance(result.job_id)
    assert stored == result.provenance
    assert inputs == result.inputs == []
    assert ledger.result(result.job_id).provenance == result.provenance
    row = jp.jobs().set_index("job_id").loc[result.job_id]
    assert row["git_commit"] == git(repo, "rev-parse", "HEAD")[:12]
    assert row["user"] == result.provenance["user"]
    assert row["host"] == result.provenance["host"]
    assert row["duration_s"] == pytest.approx(result.provenance["duration_s"])


def test_card_has_a_folded_provenance_section(repo):
    result = jp.publish("results")
    html = result._repr_html_()
    section = html[html.index("<details class='jupyter-publish-provenance'>") :]
    assert section.startswith("<details class='jupyter-publish-provenance'><summary>Provenance")
    assert git(repo, "rev-parse", "HEAD")[:12] in section
    assert f"Python {platform.python_version()}" in section


def test_a_failed_publish_keeps_its_provenance(repo, tmp_path):
    with pytest.raises(SourceError):
        jp.publish(str(tmp_path / "missing"))
    (row,) = Ledger().jobs()
    assert row["status"] == "failed"
    facts, _ = Ledger().provenance(row["job_id"])
    assert facts["status"] == "failed"
    assert facts["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert facts["finished_at"] >= facts["started_at"]


def test_a_job_that_failed_before_publishing_keeps_the_callers_facts(outside):
    job = begin_job(name="cell", provenance={"cell_source": "1/0", "magic_line": "%%publish"})
    job.fail("cell failed: ZeroDivisionError: division by zero")
    facts, _ = Ledger().provenance(job.job_id)
    assert facts["status"] == "failed"
    assert facts["cell_source"] == "1/0"
    assert facts["cell_sha256"] == hashlib.sha256(b"1/0").hexdigest()
    assert facts["started_at"] == job.started_at


def test_old_ledgers_get_the_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, node_id TEXT NOT NULL,"
        " name TEXT NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL, destination TEXT NOT NULL, uri TEXT,"
        " url TEXT, root_cid TEXT, n_files INTEGER, total_size INTEGER, created_at TEXT NOT NULL,"
        " finished_at TEXT, error TEXT, result_json TEXT);"
        "INSERT INTO jobs VALUES ('j-OLD', 'e', 'n', 'r', 'failed', 'local', 'local', NULL, NULL, NULL,"
        " NULL, NULL, '2024-01-01T00:00:00.000Z', NULL, 'x', NULL);"
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    (row,) = ledger.jobs()
    assert row["git_commit"] is None and row["duration_s"] is None
    assert ledger.provenance("j-OLD") == ({}, [])


# -- secrets --------------------------------------------------------------------------------


def test_scrub_source_masks_secrets_and_keeps_code():
    redact.register("registered-Secret-Value-42")
    cell = (
        "import boto3\n"
        "key = 'registered-Secret-Value-42'\n"
        'password = "hunter2hunter2"\n'
        "client = make(aws_secret_access_key='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')\n"
        "os.environ['GITHUB_TOKEN'] = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'\n"
        "url = 'https://bob:pa55word@example.com/data'\n"
        "n = 42\n"
        "tokenizer = 'bert-base-uncased'\n"
        "author = 'Ada Lovelace'\n"
    )
    shown = provenance.scrub_source(cell)
    for secret in (
        "registered-Secret-Value-42",
        "hunter2hunter2",
        "wJalrXUtnFEMI",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "pa55word",
    ):
        assert secret not in shown
    assert "import boto3\n" in shown and "n = 42\n" in shown and 'password = "***"' in shown
    assert "tokenizer = 'bert-base-uncased'\n" in shown and "author = 'Ada Lovelace'\n" in shown


def test_publisher_placeholders_in_the_line_are_recorded_with_it():
    facts = provenance.capture(
        {"magic_line": "%%publish s3://b/{jobID}/{date}", "magic_values": {"{{x}}": 1}},
        placeholders={"jobID": "j-1", "date": "2026-01-02", "time": "10-00-00"},
    )
    assert provenance.public(facts)["magic_values"] == {
        "{{x}}": "1",
        "{jobID}": "j-1",
        "{date}": "2026-01-02",
    }


def test_placeholder_values_that_look_secret_are_left_out():
    values = {
        "{{run}}": "7",
        "{{api_token}}": "harmless-looking",
        "{{url}}": "https://u:pw123456@h/x",
        "{jobID}": "j-1",
        "{{aws_key}}": "plain",
        "{{cfg.value}}": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "{{uuid}}": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "{{job}}": "j-01M97HYT6Y37QZ04GFHEVRGM4P",
        "{{path}}": "runs/2026/model final.pt",
        "{{cid}}": "QmQG3HkYCTyeB4iZ8zRCCeX6hWEhm5fBaNRuydFbp2fesk",
    }
    assert provenance.public_values(values) == {
        "{{run}}": "7",
        "{jobID}": "j-1",
        "{{uuid}}": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "{{job}}": "j-01M97HYT6Y37QZ04GFHEVRGM4P",
        "{{path}}": "runs/2026/model final.pt",
        "{{cid}}": "QmQG3HkYCTyeB4iZ8zRCCeX6hWEhm5fBaNRuydFbp2fesk",
    }


def test_a_secret_passed_as_cell_source_never_reaches_the_ledger(outside, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envSECRETvalue/abcdefghijklmnop")
    cell = "secret = 'envSECRETvalue/abcdefghijklmnop'\nopen(OUTPUT / 'x', 'w').write('1')\n"
    result = jp.publish("results", provenance={"cell_source": cell, "magic_line": "%%publish"})
    assert result.provenance["cell_sha256"] == hashlib.sha256(cell.encode()).hexdigest()
    assert "envSECRETvalue" not in json.dumps(result.to_dict())
    assert "envSECRETvalue" not in result._repr_html_()
    assert b"envSECRETvalue" not in ledger_bytes(Path(os.environ["JUPYTER_PUBLISH_HOME"]))
    assert "secret = '***'" in result.provenance["cell_source"]


# -- the command line ---------------------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=120,
    )


def test_cli_json_has_the_provenance_and_jobs_lists_it(repo):
    out = cli("publish", "results", "--json", cwd=repo)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    facts = doc["provenance"]
    assert facts["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert facts["status"] == "published" and facts["duration_s"] >= 0
    assert "kernel" not in facts  # a plain process
    assert doc["inputs"] == []
    listed = json.loads(cli("jobs", "--json", cwd=repo).stdout)
    assert listed[0]["git_commit"] == facts["git"]["commit"][:12]
    assert listed[0]["user"] == facts["user"]


# -- cost --------------------------------------------------------------------------------------


def test_capture_is_cheap_once_warm(repo):
    import time

    provenance.capture()  # the first call lists the installed distributions
    began = time.perf_counter()
    for _ in range(5):
        provenance.capture()
    each = (time.perf_counter() - began) / 5
    assert each < 0.25, f"{each * 1000:.0f} ms per capture"  # ~10 ms: one or two git processes


# -- every way in -------------------------------------------------------------------------------


def test_a_sync_round_records_only_what_it_is_a_draft_of(outside):
    """A round names its job and its own times; the final publish records the cell,
    git and packages once (review of issue 12, #13)."""
    job = begin_job(
        name="cell", provenance={"cell_source": "x = 1", "magic_line": "%%publish --sync-every 5"}
    )
    round_result = job.publish_round(outside / "results", 1)
    facts = round_result.provenance
    assert facts["round_of"] == job.job_id and facts["status"] == "published"
    assert facts["started_at"] > job.started_at  # a round starts when it runs
    assert not {"cell_source", "magic_line", "packages", "git", "python"} & set(facts)
    assert round_result.inputs == []
    final = job.publish(outside / "results")
    assert final.provenance["started_at"] == job.started_at  # the job began before its outputs
    assert final.provenance["cell_sha256"] == hashlib.sha256(b"x = 1").hexdigest()
    assert final.provenance["magic_line"] == "%%publish --sync-every 5"


def test_the_publish_panel_records_provenance(outside):
    from jupyter_publish.widgets import publish_panel

    panel = publish_panel(paths=[outside / "results"], destination="local")
    result = panel.publish_now()
    assert result is not None
    assert result.provenance["status"] == "published"
    assert "ipywidgets" in result.provenance["packages"]
    assert Ledger().provenance(result.job_id)[0] == result.provenance


def test_a_deleted_working_folder_is_no_error(tmp_path, monkeypatch):
    (tmp_path / "out.txt").write_text("x")
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    facts = jp.publish(tmp_path / "out.txt").provenance
    assert "git" not in facts and facts["status"] == "published"


def test_a_resumed_job_keeps_its_git_commit(repo, monkeypatch):
    """A job killed before git answered recorded no commit: resuming it asks git again
    (review of issue 12, #5)."""
    import jupyter_publish.publisher as publisher

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(provenance, "git_state", lambda *a, **k: None)  # git had not answered
        patch.setattr(publisher, "_run", interrupted)
        with pytest.raises(KeyboardInterrupt):
            jp.publish("results")
    job_id = Ledger().jobs()[0]["job_id"]
    began, _ = Ledger().provenance(job_id)
    assert began and "git" not in began
    result = jp.resume(job_id)
    assert result.provenance["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert result.provenance["started_at"] == began["started_at"] and result.provenance["resumed_at"]
