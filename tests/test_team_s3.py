"""Working as a team, end to end on a real S3 server (SeaweedFS): the catalog, provenance,
lineage, dedup and the RO-Crate export together, across two machines.

Two ``JUPYTER_PUBLISH_HOME``s stand for two machines (separate ledgers), sharing one
bucket as catalog. Machine A runs a ``%%publish`` cell in a git repository; machine B
lists it, sees what produced it, fetches it by ID verified, and publishes a job derived
from it; A, which never fetched anything, sees the edge between them. B exports A's job
as an RO-Crate from the catalog alone; B publishing A's bytes to the same bucket copies
them server-side; and a tampered record is refused in one line everywhere B meets it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from machines import cli_at, git, make_repo
from trees import random_file

import jupyter_publish as jp
from jupyter_publish.catalog import TamperedRecordError, open_catalog, records
from jupyter_publish.crate import check_crate
from jupyter_publish.ledger import Ledger
from jupyter_publish.lineage import forget_fetches

pytestmark = pytest.mark.servers

MiB = 1024 * 1024
CELL = """import pandas as pd
frame = pd.DataFrame({"x": [1, 2, 3]})
frame.to_csv(OUTPUT / "frame.csv", index=False)
"""


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """``use("a")`` / ``use("b")`` / ...: machines, each its own home and ledger."""
    forget_fetches()

    def use(name: str) -> Path:
        path = tmp_path / f"home-{name}"
        monkeypatch.setenv("JUPYTER_PUBLISH_HOME", str(path))
        return path

    use("a")
    yield use
    forget_fetches()


@pytest.fixture
def cli(homes) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(home, *args)``: the command line as another process on machine ``home``."""

    def run(home: str, *args: str) -> subprocess.CompletedProcess[str]:
        return cli_at(homes(home), *args)

    return run


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository the notebook runs in (the working directory)."""
    root = make_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return root


@pytest.fixture
def cell(ip):
    """``cell(code)``: run a cell in the real shell; its error, if any, fails the test."""
    magics = ip.magics_manager.registry["PublishMagics"]
    names = ("r", "r2", "f", "shown")

    def run(code: str) -> object:
        with capture_output() as io:
            result = ip.run_cell(code)
        error = result.error_before_exec or result.error_in_exec
        assert error is None, f"{error!r}\nstdout: {io.stdout}\nstderr: {io.stderr}"
        return result.result

    yield run
    magics.catalog = ""
    for name in names:
        ip.user_ns.pop(name, None)


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with exactly one line on stderr (no traceback) holding ``words``."""
    assert done.returncode != 0, done.stdout
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


# -- 1. a cell's job on A: listed, understood, fetched and used on B; its lineage on A ---------------


def test_a_cell_published_on_one_machine_is_found_trusted_and_used_on_another(
    s3_env, s3_bucket, homes, ip, repo, cell, cli, tmp_path
):
    catalog = f"s3://{s3_bucket}/catalog/"
    commit = git(repo, "rev-parse", "HEAD")
    cell(f"%%publish s3://{s3_bucket}/cells/{{jobID}}/ --out r --name analysis --catalog {catalog}\n{CELL}")
    j1 = ip.user_ns["r"]
    assert j1.provenance["cell_sha256"] == hashlib.sha256(CELL.encode()).hexdigest()

    # Machine B lists the team's jobs: the API, the magics, the command line.
    homes("b")
    frame = jp.jobs(catalog=catalog)
    row = frame.set_index("job_id").loc[j1.job_id]
    assert row["status"] == "published" and row["name"] == "analysis" and row["uri"] == j1.uri
    assert row["git_commit"] == commit[:12] and row["user"] and row["host"]
    shown = cell(f"%jobs --catalog {catalog}")
    assert list(shown["job_id"]) == [j1.job_id] and shown["git_commit"][0] == commit[:12]
    listed = cli("b", "jobs", "--catalog", catalog, "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["job_id"] == j1.job_id and entry["git_commit"] == commit[:12]

    # ... and what produced it: the record carries the whole provenance.
    with open_catalog(catalog) as cat:
        recorded = cat.result(j1.job_id)
    facts = recorded.provenance
    assert facts["cell_sha256"] == hashlib.sha256(CELL.encode()).hexdigest()
    assert facts["cell_source"] == CELL
    assert facts["git"] == {"commit": commit, "dirty": False, "branch": "main"}
    assert facts["packages"]["pandas"] == version("pandas")
    assert facts == j1.provenance

    # B fetches it by ID (the magic), verified, then publishes a job derived from it.
    cell(f"%fetch {j1.job_id} --catalog {catalog} --to {tmp_path / 'got'} --no-preview --out f")
    assert ip.user_ns["f"].verified
    assert (tmp_path / "got" / "frame.csv").read_text() == "x\n1\n2\n3\n"
    derived = (
        "import pandas as pd\n"
        f"frame = pd.read_csv({str(tmp_path / 'got' / 'frame.csv')!r})\n"
        "(frame * 2).to_csv(OUTPUT / 'doubled.csv', index=False)\n"
    )
    line = f"%%publish s3://{s3_bucket}/derived/{{jobID}}/ --out r2 --name doubled --catalog {catalog}"
    cell(f"{line}\n{derived}")
    j2 = ip.user_ns["r2"]
    assert [(i["job_id"], i["via"]) for i in j2.inputs] == [(j1.job_id, "fetch")]
    assert [j["job_id"] for j in Ledger().jobs()] == [j2.job_id]  # B fetched J1; it never published it

    # Machine A never fetched: the edge J1 -> J2 comes from the catalog.
    homes("a")
    with pytest.raises(jp.PublishError, match="no published job"):
        jp.lineage(j2.job_id)  # A's ledger alone does not know J2
    edges = jp.lineage(j2.job_id, catalog=catalog)
    assert list(zip(edges["used_job"], edges["produced"], edges["via"], strict=True)) == [
        (j1.job_id, j2.job_id, "fetch")
    ]
    assert edges["used_name"][0] == "analysis" and edges["produced_name"][0] == "doubled"
    upstream = jp.lineage(j1.job_id, catalog=catalog)  # downstream of J1: the same edge
    assert list(upstream["produced"]) == [j2.job_id]
    shown = cell(f"%jobs --lineage {j2.job_id} --catalog {catalog}")
    assert list(shown["used_job"]) == [j1.job_id] and list(shown["produced"]) == [j2.job_id]
    drawn = cli("a", "lineage", j2.job_id, "--catalog", catalog, "--json")
    assert drawn.returncode == 0, drawn.stderr
    assert [(e["used_job"], e["produced"]) for e in json.loads(drawn.stdout)] == [(j1.job_id, j2.job_id)]
    one_line_error(cli("c", "lineage", j2.job_id), "no published job")  # a third machine, no catalog


# -- 2. an RO-Crate of a job the exporting machine never published -----------------------------------


def test_export_from_the_catalog_on_a_machine_that_never_published_the_job(
    s3_env, s3_bucket, homes, ip, repo, cell, cli, tmp_path, monkeypatch
):
    catalog = f"s3://{s3_bucket}/catalog/"
    cell(f"%%publish s3://{s3_bucket}/cells/{{jobID}}/ --out r --no-archive --catalog {catalog}\n{CELL}")
    j1 = ip.user_ns["r"]
    frame_file = next(f for f in j1.files if f.path == "frame.csv")

    crate = tmp_path / "crate"
    one_line_error(cli("b", "export", j1.job_id, "--ro-crate", str(crate)), "no job")
    done = cli("b", "export", j1.job_id, "--ro-crate", str(crate), "--catalog", catalog)
    assert done.returncode == 0, done.stderr
    document = json.loads((crate / "ro-crate-metadata.json").read_text())
    assert check_crate(document) == []
    graph = {e["@id"]: e for e in document["@graph"]}
    files = [e for e in graph.values() if "File" in e["@type"] and e.get("sha256") == frame_file.sha256]
    assert len(files) == 1 and frame_file.cid in json.dumps(files[0])
    assert graph["#cell"]["sha256"] == hashlib.sha256(CELL.encode()).hexdigest()
    assert graph["#notebook"]["version"] == git(repo, "rev-parse", "HEAD")
    assert "https://pypi.org/project/pandas/" in graph
    actions = [e for e in graph.values() if "CreateAction" in e["@type"]]
    assert len(actions) == 1 and {"@id": files[0]["@id"]} in actions[0]["result"]
    homes("b")
    assert not Ledger().jobs()  # B read the record; it published nothing

    # The API on a third machine, the catalog from the environment.
    homes("c")
    monkeypatch.setenv("JUPYTER_PUBLISH_CATALOG", catalog)
    written = jp.export(j1.job_id, ro_crate=tmp_path / "api-crate")
    assert check_crate(json.loads(written.read_text())) == []


# -- 3. send only new bytes, across machines ------------------------------------------------------


@pytest.mark.parametrize("archive", [False, True], ids=["plain", "archive"])
def test_bytes_a_colleague_sent_to_the_bucket_are_copied_not_sent_again(
    s3_env, s3_bucket, homes, tmp_path, archive
):
    catalog = f"s3://{s3_bucket}/catalog/"
    results = tmp_path / "results"
    results.mkdir()
    big = random_file(results / "weights.bin", 3 * MiB, b"team")
    (results / "notes.txt").write_text("trained on Monday\n")
    size = big.stat().st_size
    total = size + (results / "notes.txt").stat().st_size
    dest = f"s3://{s3_bucket}/runs/{{jobID}}/"
    first = jp.publish(results, dest, catalog=catalog, archive=archive)
    assert first.copied_bytes == 0

    # B has read the catalog (any listing does): its publish copies what A sent.
    homes("b")
    assert Ledger().jobs() == [] and len(jp.jobs(catalog=catalog)) == 1
    again = jp.publish(results, dest, catalog=catalog, archive=archive)
    if archive:
        assert again.copied_bytes == first.archive.size and again.sent_bytes == 0
        assert again.archive.sha256 == first.archive.sha256
    else:
        assert again.copied_bytes == size and again.sent_bytes == total - size
    back = jp.fetch(again.job_id, tmp_path / "back")
    assert back.verified
    assert hashlib.sha256((tmp_path / "back" / "weights.bin").read_bytes()).hexdigest() == (
        hashlib.sha256(big.read_bytes()).hexdigest()
    )

    # C never read the catalog: publish does not list it (a publish costs no catalog
    # listing, whatever the catalog's size), so C uploads. By design.
    homes("c")
    fresh = jp.publish(results, dest, catalog=catalog, archive=archive)
    assert fresh.copied_bytes == 0 and fresh.sent_bytes == (first.archive.size if archive else total)


def test_bytes_on_an_endpoint_named_as_an_option_are_copied_too(
    s3_env, s3_bucket, homes, tmp_path, monkeypatch
):
    """No endpoint in the environment: the destination's ``endpoint=`` reaches the
    catalog's cache lookup too (else the records B read are filed under another name)."""
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    catalog = f"s3://{s3_bucket}/catalog/"
    results = tmp_path / "results"
    results.mkdir()
    size = random_file(results / "weights.bin", 2 * MiB + 1, b"team").stat().st_size
    dest = f"s3://{s3_bucket}/runs/{{jobID}}/"
    jp.publish(results, dest, catalog=catalog, archive=False, endpoint=endpoint)
    homes("b")
    assert len(jp.jobs(catalog=catalog, catalog_options={"endpoint": endpoint})) == 1
    again = jp.publish(results, dest, catalog=catalog, archive=False, endpoint=endpoint)
    assert again.copied_bytes == size and again.sent_bytes == 0


# -- 4. a tampered record: refused, in one line, wherever B meets it ---------------------------


def test_a_tampered_record_is_refused_in_one_line_everywhere(
    s3_env, s3_bucket, homes, ip, cell, cli, tmp_path
):
    catalog = f"s3://{s3_bucket}/catalog/"
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.txt").write_text("a")
    good = jp.publish(source, f"s3://{s3_bucket}/good/{{jobID}}/", catalog=catalog)
    bad = jp.publish(source, f"s3://{s3_bucket}/bad/{{jobID}}/", catalog=catalog)
    s3 = s3_env.client()
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="catalog/records/")["Contents"]
    key = next(o["Key"] for o in listed if bad.job_id in o["Key"])
    doc = json.loads(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    doc["result"]["uri"] = f"s3://{s3_bucket}/elsewhere/"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=records.encode(doc))

    # The command line, on B: one line each, never a traceback, never the tampered job.
    listed_b = cli("b", "jobs", "--catalog", catalog, "--json")
    assert listed_b.returncode == 0, listed_b.stderr
    assert [r["job_id"] for r in json.loads(listed_b.stdout)] == [good.job_id]
    (warning,) = listed_b.stderr.strip().splitlines()
    assert key in warning and "refused" in warning
    one_line_error(
        cli("b", "fetch", bad.job_id, "--catalog", catalog, "--to", str(tmp_path / "x")), key, "refused"
    )
    one_line_error(
        cli("b", "export", bad.job_id, "--ro-crate", str(tmp_path / "crate"), "--catalog", catalog),
        key,
        "refused",
    )
    one_line_error(cli("b", "lineage", bad.job_id, "--catalog", catalog), key, "refused")
    assert not (tmp_path / "crate" / "ro-crate-metadata.json").exists()

    # The API and the magics on B (in this process).
    homes("b")
    with pytest.raises(TamperedRecordError, match="refused"):
        jp.fetch(bad.job_id, tmp_path / "y", catalog=catalog)
    with pytest.raises(TamperedRecordError, match="refused"):
        jp.lineage(bad.job_id, catalog=catalog)
    with pytest.raises(TamperedRecordError, match="refused"):
        jp.export(bad.job_id, ro_crate=tmp_path / "crate2", catalog=catalog)
    for line in (
        f"%fetch {bad.job_id} --catalog {catalog} --to {tmp_path / 'z'} --no-preview",
        f"%jobs --lineage {bad.job_id} --catalog {catalog}",
    ):
        with pytest.raises(UsageError, match="refused") as caught:
            ip.run_line_magic(line.split()[0][1:], line.split(" ", 1)[1])
        assert "\n" not in str(caught.value)
    assert jp.fetch(good.job_id, tmp_path / "good", catalog=catalog).verified
