"""Lineage: what a job used (fetched before it, named, fetched into what it publishes),
and the graph of edges across jobs: in one process, and across command-line processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jupyter_publish as jp
from jupyter_publish.errors import NotFoundError, OptionError
from jupyter_publish.ledger import Ledger
from jupyter_publish.lineage import JobNode, dedupe, forget_fetches, lineage_edges, lineage_rows
from jupyter_publish.results import PublishedResult


@pytest.fixture(autouse=True)
def fresh_process_memory():
    """Each test starts as a fresh kernel would: no fetch made yet."""
    forget_fetches()
    yield
    forget_fetches()


def folder(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "data.txt").write_text(text)
    return path


def edges_of(frame) -> set[tuple[str, str]]:
    return set(zip(frame["used_job"], frame["produced"], strict=True))


def node(job_id: str, *uses: str, cid: str | None = None, by: str = "job") -> JobNode:
    inputs = [
        {
            "ref": u,
            "kind": by,
            "job_id": u if by == "job" else None,
            "cid": u if by == "cid" else None,
            "via": "line",
        }
        for u in uses
    ]
    return JobNode(
        job_id, f"name-{job_id}", f"2026-01-01T00:00:0{job_id[-1]}.000Z", f"local://{job_id}/", cid, inputs
    )


# -- the pure walk --------------------------------------------------------------------------


def test_a_chain_is_walked_upstream_and_downstream():
    records = [node("j-A1"), node("j-B2", "j-A1"), node("j-C3", "j-B2"), node("j-X4")]
    pairs = {(r["used_job"], r["produced"]) for r in lineage_rows(records, "j-B2")}
    assert pairs == {("j-A1", "j-B2"), ("j-B2", "j-C3")}
    assert {(r["used_job"], r["produced"]) for r in lineage_rows(records, "j-C3")} == {
        ("j-A1", "j-B2"),
        ("j-B2", "j-C3"),
    }
    assert lineage_rows(records, "j-X4") == []


def test_a_cycle_is_walked_once():
    records = [node("j-A1", "j-B2"), node("j-B2", "j-A1")]
    rows = lineage_rows(records, "j-A1")
    assert sorted((r["used_job"], r["produced"]) for r in rows) == [("j-A1", "j-B2"), ("j-B2", "j-A1")]


def test_an_input_named_by_cid_or_uri_finds_its_job():
    records = [
        node("j-A1", cid="QmA"),
        node("j-B2", "QmA", by="cid"),
        node("j-C3", "local://j-B2/", by="uri"),
    ]
    rows = lineage_rows(records, "j-A1")
    assert {(r["used"], r["used_job"], r["produced"]) for r in rows} == {
        ("QmA", "j-A1", "j-B2"),
        ("local://j-B2/", "j-B2", "j-C3"),
    }
    by_cid = next(r for r in rows if r["produced"] == "j-B2")
    assert (
        by_cid["used_name"] == "name-j-A1"
        and by_cid["cid"] == "QmA"
        and by_cid["produced_name"] == "name-j-B2"
    )


def test_an_unknown_input_is_an_edge_from_outside():
    rows = lineage_rows([node("j-B2", "s3://elsewhere/raw.csv", by="uri")], "j-B2")
    assert [(r["used"], r["used_job"], r["produced"]) for r in rows] == [
        ("s3://elsewhere/raw.csv", None, "j-B2")
    ]


def test_a_job_is_found_by_a_unique_prefix_only():
    records = [node("j-AAAAAAAA1"), node("j-AAAAAAAA2", "j-AAAAAAAA1")]
    assert len(lineage_rows(records, "j-AAAAAAAA2")) == 1
    with pytest.raises(NotFoundError, match="ambiguous"):
        lineage_rows(records, "j-AAAA")
    with pytest.raises(NotFoundError, match="no published job"):
        lineage_rows(records, "j-ZZZZZZZZ")


def test_edges_frame_columns_and_types():
    frame = lineage_edges([node("j-A1"), node("j-B2", "j-A1")], "j-A1")
    assert list(frame.columns[:7]) == [
        "used", "used_job", "used_name", "produced", "produced_name", "produced_at", "kind",
    ]  # fmt: skip
    assert {"via", "cid"} <= set(frame.columns)
    assert str(frame["produced_at"].dtype).startswith("datetime64")
    assert frame.iloc[0]["via"] == "line"


def test_dedupe_keeps_the_first_and_fills_it_in():
    merged = dedupe(
        [
            {"ref": "QmX", "kind": "cid", "job_id": None, "cid": "QmX", "via": "line"},
            {"ref": "j-A", "kind": "job", "job_id": "j-A", "cid": "QmX", "via": "fetch"},
            {"ref": "j-A", "kind": "job", "job_id": "j-A", "cid": "QmX", "via": "source"},
        ]
    )
    assert merged == [{"ref": "QmX", "kind": "cid", "job_id": "j-A", "cid": "QmX", "via": "line"}]


# -- in one process ------------------------------------------------------------------------------


def test_fetch_then_publish_is_an_edge(tmp_path):
    a = jp.publish(folder(tmp_path, "a", "raw"))
    fetched = jp.fetch(a.job_id, tmp_path / "got-a")
    b = jp.publish(folder(tmp_path, "b", "derived from raw"))  # not the fetched folder: still used
    assert b.inputs == [
        {"ref": a.job_id, "kind": "job", "job_id": a.job_id, "cid": a.root_cid, "via": "fetch"}
    ]
    assert Ledger().provenance(b.job_id)[1] == b.inputs
    assert Ledger().result(b.job_id).inputs == b.inputs
    frame = jp.lineage(b.job_id)
    assert edges_of(frame) == {(a.job_id, b.job_id)}
    assert jp.lineage(a).equals(frame)  # from either end, the same edge
    (row,) = Ledger().fetches_touching([os.path.realpath(fetched.dest)])
    assert (row["ref"], row["job_id"], row["cid"]) == (a.job_id, a.job_id, a.root_cid)


def test_a_chain_in_one_process(tmp_path):
    a = jp.publish(folder(tmp_path, "a", "raw"))
    got_a = jp.fetch(a.job_id, tmp_path / "got-a")
    b = jp.publish(got_a.dest)  # publishing the fetched result again keeps the chain
    got_b = jp.fetch(b.job_id, tmp_path / "got-b")
    c = jp.publish(got_b.dest)
    assert edges_of(jp.lineage(c.job_id)) >= {(a.job_id, b.job_id), (b.job_id, c.job_id)}
    downstream = jp.lineage(a.job_id)
    assert (b.job_id, c.job_id) in edges_of(downstream)
    assert [i["job_id"] for i in b.inputs] == [a.job_id]  # fetched and in the sources: once


def test_a_fetch_by_uri_names_the_job_that_published_it(tmp_path):
    a = jp.publish(folder(tmp_path, "a", "raw"), archive=False)
    jp.fetch(a.uri, tmp_path / "got")
    b = jp.publish(folder(tmp_path, "b", "x"))
    (entry,) = b.inputs
    assert (entry["ref"], entry["kind"], entry["job_id"], entry["via"]) == (a.uri, "uri", a.job_id, "fetch")
    assert edges_of(jp.lineage(b.job_id)) == {(a.job_id, b.job_id)}


def test_a_failed_fetch_is_no_input(tmp_path):
    with pytest.raises(NotFoundError):
        jp.fetch("j-NOSUCHJOB0000000000000000", tmp_path / "x")
    assert jp.publish(folder(tmp_path, "b", "x")).inputs == []


def test_uses_names_jobs_cids_uris_and_paths(tmp_path):
    a = jp.publish(folder(tmp_path, "a", "raw"))
    got = jp.fetch(a.job_id, tmp_path / "got")
    forget_fetches()  # only what is named below
    b = jp.publish(
        folder(tmp_path, "b", "x"),
        uses=[a.job_id[:10], a.root_cid, "https://example.org/data.csv", got.dest / "data.txt", a],
    )
    assert [(i["kind"], i["job_id"]) for i in b.inputs] == [("job", a.job_id), ("uri", None)]
    with pytest.raises(OptionError, match="not a job ID"):
        jp.publish(folder(tmp_path, "c", "x"), uses=["no-such-path"])


def test_records_from_elsewhere_join_the_ledgers(tmp_path):
    a = jp.publish(folder(tmp_path, "a", "raw"))
    remote = PublishedResult.from_dict({**a.to_dict(), "job_id": "j-REMOTE", "inputs": [
        {"ref": a.job_id, "kind": "job", "job_id": a.job_id, "cid": None, "via": "fetch"},
    ]})  # fmt: skip
    assert edges_of(jp.lineage(a.job_id, records=[remote])) == {(a.job_id, "j-REMOTE")}
    assert jp.lineage(a.job_id).empty


def test_a_fetch_into_one_ledger_is_not_an_input_of_a_publish_to_another(tmp_path):
    a = jp.publish(folder(tmp_path, "a", "raw"))
    jp.fetch(a.job_id, tmp_path / "got")
    other = Ledger(tmp_path / "other.sqlite")
    assert jp.publish(folder(tmp_path, "b", "x"), ledger=other).inputs == []


def test_jp_lineage_stays_the_function_whatever_is_imported_first():
    code = (
        "import jupyter_publish.lineage, jupyter_publish.preview\n"
        "import jupyter_publish as jp\n"
        "import jupyter_publish.publisher\n"
        "from jupyter_publish.lineage import lineage_edges\n"
        "print(jp.lineage.__module__, jp.preview.__module__, callable(lineage_edges))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["jupyter_publish.api", "jupyter_publish.preview", "True"]


# -- across processes: the command line ---------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_fetch_then_publish_in_two_processes_keeps_the_chain(tmp_path):
    folder(tmp_path, "raw", "raw data")
    a = json.loads(cli("publish", "raw", "--json", cwd=tmp_path).stdout)
    cli("fetch", a["job_id"], "--to", "work/a", cwd=tmp_path)
    b = json.loads(cli("publish", "work/a", "--json", cwd=tmp_path).stdout)
    (entry,) = b["inputs"]
    assert (entry["job_id"], entry["via"], entry["cid"]) == (a["job_id"], "source", a["root_cid"])
    cli("fetch", b["job_id"], "--to", "work/b", cwd=tmp_path)
    (tmp_path / "work" / "b" / "more.txt").write_text("added")
    c = json.loads(cli("publish", "work/b/data.txt", "work/b/more.txt", "--json", cwd=tmp_path).stdout)
    assert [i["job_id"] for i in c["inputs"]] == [b["job_id"]]
    edges = json.loads(cli("lineage", c["job_id"], "--json", cwd=tmp_path).stdout)
    assert {(e["used_job"], e["produced"]) for e in edges} == {
        (a["job_id"], b["job_id"]),
        (b["job_id"], c["job_id"]),
    }
    shown = cli("lineage", a["job_id"], cwd=tmp_path).stdout
    assert a["job_id"] in shown and c["job_id"] in shown


def test_cli_uses_is_repeatable(tmp_path):
    folder(tmp_path, "raw", "raw")
    a = json.loads(cli("publish", "raw", "--json", cwd=tmp_path).stdout)
    folder(tmp_path, "out", "x")
    b = json.loads(
        cli(
            "publish", "out", "--uses", a["job_id"], "--uses", "s3://bucket/ref.csv", "--json", cwd=tmp_path
        ).stdout
    )
    assert [(i["ref"], i["job_id"], i["via"]) for i in b["inputs"]] == [
        (a["job_id"], a["job_id"], "line"),
        ("s3://bucket/ref.csv", None, "line"),
    ]


def test_cli_lineage_of_an_unknown_job_is_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_publish.cli", "lineage", "j-NOPE00000"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "no published job" in out.stderr


def test_a_resumed_job_keeps_what_it_recorded_when_it_began(tmp_path, monkeypatch):
    import jupyter_publish.publisher as publisher

    a = jp.publish(folder(tmp_path, "a", "raw"))
    jp.fetch(a.job_id, tmp_path / "got")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(publisher, "_run", interrupted)
        with pytest.raises(KeyboardInterrupt):
            jp.publish(folder(tmp_path, "b", "x"))
    job_id = Ledger().jobs()[0]["job_id"]
    began, inputs = Ledger().provenance(job_id)
    assert began["status"] == "failed" and [i["job_id"] for i in inputs] == [a.job_id]
    forget_fetches()  # as if resumed by another process
    result = jp.resume(job_id)
    assert result.inputs == inputs
    assert result.provenance["started_at"] == began["started_at"]
    assert result.provenance["status"] == "published" and result.provenance["resumed_at"]
    assert edges_of(jp.lineage(job_id)) == {(a.job_id, job_id)}


def test_sync_rounds_are_drafts_lineage_and_dedup_skip(tmp_path):
    """A job's sync rounds record no inputs and are no dedup candidates: lineage shows
    the final job alone as the consumer (review of issue 12, #13)."""
    from jupyter_publish.publisher import begin_job

    a = jp.publish(folder(tmp_path, "a", "raw"))
    jp.fetch(a.job_id, tmp_path / "got")
    out = folder(tmp_path, "out", "draft")
    job = begin_job(name="cell", uses=[a.job_id])
    rounds = [job.publish_round(out, n) for n in (1, 2)]
    final = job.publish(out, archive=False)
    assert [r.inputs for r in rounds] == [[], []]
    assert edges_of(jp.lineage(a.job_id)) == {(a.job_id, final.job_id)}
    ledger = Ledger()
    assert ledger.job_for_cid(rounds[0].root_cid) == final.job_id
    size = (out / "data.txt").stat().st_size
    candidates = [row["job_id"] for row in ledger.stored_copies([size], "").get(size, [])]
    assert candidates == [final.job_id]
